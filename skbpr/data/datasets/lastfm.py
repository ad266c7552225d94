"""The Last.fm HetRec 2011 listening data (``hetrec2011-lastfm-2k``) as implicit feedback.

Every (user, artist) pair in ``user_artists.dat`` is a positive whose weight
is the play count; there are no implicit negatives.  Friendships
(``user_friends.dat``) become user features and, where the release's tag
files are present (``user_taggedartists.dat`` with ``tags.dat``), tags become
artist features.

The files are read from ``data_home/hetrec2011-lastfm-2k/`` as GroupLens
distributes them (tab separated, with or without a header line, CRLF or LF
line ends); nothing is downloaded.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from skbpr.data.assembly import IdAxis, build_interactions
from skbpr.data.datasets.cache import get_data_home
from skbpr.data.datasets.features import multi_hot
from skbpr.utils.validation import check_bool, check_number

FOLDER = "hetrec2011-lastfm-2k"
URL = "https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip"


def _read_table(path: Path, names: list[str], numeric: int) -> pd.DataFrame:
    """Tab-separated table whose first ``numeric`` columns are integers; a
    first line whose first field is not an integer is a header and skipped."""
    raw = path.read_bytes()
    first = raw.split(b"\n", 1)[0].split(b"\t", 1)[0].strip()
    header = 0 if not first.lstrip(b"-").isdigit() else None
    try:
        frame = pd.read_csv(
            io.BytesIO(raw),
            sep="\t",
            header=header,
            names=names,
            usecols=range(len(names)),
            quoting=csv.QUOTE_NONE,
            keep_default_na=False,
            encoding="utf-8",
            encoding_errors="replace",
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"{path} is not a tab-separated table with columns {names}: {exc}") from exc
    for column in names[:numeric]:
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().any():
            bad = frame[column][values.isna()].iloc[0]
            raise ValueError(f"{path}: column {column!r} must hold integers, got {bad!r}")
        frame[column] = values.astype(np.int64)
    return frame


def load_lastfm(
    *,
    data_home: str | os.PathLike | None = None,
    user_features: bool = True,
    item_features: bool = True,
    min_tag_items: int = 5,
):
    """Load the Last.fm HetRec 2011 data set (1,892 users, 17,632 artists).

    Parameters
    ----------
    data_home : path, optional
        Folder holding ``hetrec2011-lastfm-2k/`` (the extracted archive from
        GroupLens); default ``$SKBPR_DATA``, else ``~/skbpr_data``.
    user_features : bool
        Friends as multi-hot user features named ``friend=<raw user id>``
        (from ``user_friends.dat``); users without friends have an empty row.
    item_features : bool
        Tags as multi-hot artist features named ``tag=<tag>``, kept when
        applied to at least ``min_tag_items`` artists; only where the
        release's ``user_taggedartists.dat`` and ``tags.dat`` are present.
    min_tag_items : int
        Minimum number of distinct artists carrying a tag for it to become a
        feature.

    Returns
    -------
    Interactions
        Every listened (user, artist) pair as a positive with its play count
        in ``pos_values``; raw ``user_ids`` / ``item_ids``; the extra
        attribute ``item_titles`` holds the artist names aligned with
        ``item_ids``.

    Raises
    ------
    OSError
        When ``user_artists.dat`` is not in the folder (naming where to put
        it and where to download it from).

    Examples
    --------
    >>> import shutil, tempfile
    >>> from pathlib import Path
    >>> from skbpr.datasets import load_lastfm
    >>> home = Path(tempfile.mkdtemp())
    >>> folder = home / "hetrec2011-lastfm-2k"
    >>> folder.mkdir()
    >>> _ = (folder / "user_artists.dat").write_text("2\\t51\\t130\\n2\\t52\\t7\\n3\\t51\\t1\\n")
    >>> _ = (folder / "user_friends.dat").write_text("userID\\tfriendID\\n2\\t3\\n3\\t2\\n")
    >>> artists = "id\\tname\\turl\\tpictureURL\\n51\\tDuran Duran\\tu\\tp\\n52\\tMorcheeba\\tu\\tp\\n"
    >>> _ = (folder / "artists.dat").write_text(artists)
    >>> data = load_lastfm(data_home=home)
    >>> data.n_users, data.n_items, data.pos_values.tolist()
    (2, 2, [130.0, 7.0, 1.0])
    >>> data.user_feature_names.tolist(), data.item_titles.tolist()
    (['friend=2', 'friend=3'], ['Duran Duran', 'Morcheeba'])
    >>> shutil.rmtree(home)
    """
    check_bool(user_features, "user_features")
    check_bool(item_features, "item_features")
    check_number(min_tag_items, "min_tag_items", integer=True, low=1)
    folder = get_data_home(data_home) / FOLDER
    listens_path = folder / "user_artists.dat"
    if not listens_path.is_file():
        raise OSError(f"{listens_path} not found: extract {URL} into {folder.parent}")

    listens = _read_table(listens_path, ["user_id", "item_id", "weight"], 3)
    if (listens["weight"] <= 0).any():
        bad = listens.loc[listens["weight"] <= 0].iloc[0]
        raise ValueError(f"{listens_path}: play counts must be > 0, got {int(bad['weight'])} for {dict(bad)}")
    friends_path = folder / "user_friends.dat"
    friends = _read_table(friends_path, ["user_id", "friend_id"], 2) if friends_path.is_file() else None
    artists_path = folder / "artists.dat"
    artists = _read_table(artists_path, ["item_id", "name"], 1) if artists_path.is_file() else None

    user_ids = np.unique(listens["user_id"].to_numpy())
    item_ids = np.unique(listens["item_id"].to_numpy())
    if artists is not None:
        item_ids = np.union1d(item_ids, artists["item_id"].to_numpy())
    users = np.searchsorted(user_ids, listens["user_id"].to_numpy())
    items = np.searchsorted(item_ids, listens["item_id"].to_numpy())

    ufeat = unames = None
    if user_features and friends is not None:
        known = np.isin(friends["user_id"].to_numpy(), user_ids)
        pairs = friends.loc[known]
        rows = np.searchsorted(user_ids, pairs["user_id"].to_numpy())
        ufeat, unames = multi_hot(rows, pairs["friend_id"].to_numpy(), len(user_ids), "friend")
    ifeat = inames = None
    tagged_path, tags_path = folder / "user_taggedartists.dat", folder / "tags.dat"
    if item_features and tagged_path.is_file() and tags_path.is_file():
        tagged = _read_table(tagged_path, ["user_id", "item_id", "tag_id"], 3)
        tags = _read_table(tags_path, ["tag_id", "tag"], 1)
        names = tagged.merge(tags, on="tag_id", how="inner")[["item_id", "tag"]]
        names = names[np.isin(names["item_id"].to_numpy(), item_ids)]
        names = names.assign(tag=names["tag"].astype(str).str.strip().str.lower()).drop_duplicates()
        names = names[names["tag"] != ""]
        counts = names["tag"].value_counts()
        names = names[names["tag"].map(counts).to_numpy() >= min_tag_items]
        if len(names):
            rows = np.searchsorted(item_ids, names["item_id"].to_numpy())
            ifeat, inames = multi_hot(rows, names["tag"].to_numpy(), len(item_ids), "tag")

    data = build_interactions(
        IdAxis(user_ids, ufeat, unames),
        IdAxis(item_ids, ifeat, inames),
        users,
        items,
        pos_values=listens["weight"].to_numpy(dtype=np.float64),
    )
    titles = pd.Series("", index=item_ids, dtype=object)
    if artists is not None:
        named = artists.drop_duplicates("item_id").set_index("item_id")["name"].astype(str)
        titles = named.reindex(item_ids).fillna("")
    data.item_titles = titles.to_numpy(dtype=object)
    return data
