"""MovieLens loaders: cached download, safe extraction and parsing.

Supported releases: ``ml-100k``, ``ml-1m``, ``ml-10m``, ``ml-20m``,
``ml-25m`` and ``ml-latest-small``.

Cache layout (``data_home`` argument, else ``$SKBPR_DATA``, else
``~/skbpr_data``)::

    <data_home>/<name>/                 extracted files, used as they are
    <data_home>/.<name>.zip.<random>.part  download in progress (one per process)
    <data_home>/<name>.zip.part         download cut short, resumed by the next call

A folder already holding the extracted files (for example
``<data_home>/ml-100k/u.data``) is read directly; no archive is needed.  A
download is written to a temporary file of its own in ``data_home`` (so that
processes loading into the same folder at once never share one), verified
against a checksum, tested as a zip archive (every member's CRC), renamed to
``<name>.zip`` with an atomic ``os.replace``, extracted (members that are
absolute, contain ``..``, are symbolic links or would land outside the target
are refused) and removed.  A download that is not a valid archive (a body cut
short by a server that sent no ``Content-Length``) is deleted and fetched once
more; if it is still broken, ``OSError`` names the URL and the archive path.  A
connection lost mid-download leaves ``<name>.zip.part``, which the next call
resumes with an HTTP range request.  A cached ``<name>.zip`` that is not a
valid archive raises ``OSError`` naming it and saying to delete it.  When
several processes race, the first extracted folder wins and the others use it.

Checksums: the table below holds the MD5 digests GroupLens publishes next to
its archives (``<archive>.zip.md5``).  ``ml-latest-small`` is rebuilt by
GroupLens from time to time and has no fixed digest; pass ``checksum=`` to
pin one.
"""

from __future__ import annotations

import numbers
import os
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from skbpr.data.assembly import IdAxis, build_interactions
from skbpr.data.datasets.cache import (  # noqa: F401 - RELEASE_NAMES and get_data_home: imported from here before
    BASE_URL,
    RELEASE_NAMES,
    RELEASES,
    find_extracted,
    get_data_home,
    obtain,
    parse_checksum,
)
from skbpr.data.datasets.features import multi_hot
from skbpr.data.datasets.movielens_readers import READERS
from skbpr.data.events import encode_ids

if TYPE_CHECKING:
    from skbpr.data.interactions import Interactions

_ITEM_PARTS = ("genres", "tags", "year", "decade", "title")
_USER_PARTS = ("age", "gender", "occupation", "zip")
_DEFAULT_USER_PARTS = ("age", "gender", "occupation")
# a title ends with its release year, "(1995)", or a span of years, "(2006-2007)"
_TITLE_YEAR = r"\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$"
_NO_GENRE = "(no genres listed)"


class MovieLensFrames(NamedTuple):
    """Parsed MovieLens tables (``load_movielens(..., as_frame=True)``)."""

    ratings: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None
    tags: pd.DataFrame | None


def _sorted_ids(*arrays: np.ndarray) -> np.ndarray:
    return np.sort(pd.unique(np.concatenate([np.asarray(a, dtype=np.int64) for a in arrays])))


def _side_by_side(blocks: list[tuple[sp.csr_matrix, np.ndarray]]) -> tuple[sp.csr_matrix, np.ndarray]:
    """Feature blocks ``(matrix, names)`` as one matrix, their columns in the order of the blocks."""
    matrices, names = zip(*blocks, strict=True)
    return sp.hstack(matrices, format="csr", dtype=np.float32), np.concatenate(names)


def _genre_features(items: pd.DataFrame, item_ids: np.ndarray):
    genres = items[["item_id", "genres"]].assign(genre=items["genres"].astype(str).str.split("|"))
    genres = genres.explode("genre")
    genres = genres[(genres["genre"] != "") & (genres["genre"] != _NO_GENRE)]
    genres = genres[genres["genre"].notna()]
    rows = encode_ids(genres["item_id"].to_numpy(), item_ids)
    vocabulary = items.attrs.get("genre_vocabulary")
    return multi_hot(rows, genres["genre"].astype(str), len(item_ids), "genre", vocabulary)


def _tag_features(tags: pd.DataFrame | None, item_ids: np.ndarray, min_tag_items: int):
    if tags is None:
        return sp.csr_matrix((len(item_ids), 0), dtype=np.float32), np.array([], dtype=object)
    tag = tags["tag"].astype(str).str.strip().str.lower()
    pairs = pd.DataFrame({"item_id": tags["item_id"].to_numpy(), "tag": tag})
    pairs = pairs[pairs["tag"] != ""].drop_duplicates()
    counts = pairs["tag"].value_counts()
    pairs = pairs[pairs["tag"].map(counts).to_numpy() >= min_tag_items]
    rows = encode_ids(pairs["item_id"].to_numpy(), item_ids)
    return multi_hot(rows, pairs["tag"], len(item_ids), "tag")


def _release_years(items: pd.DataFrame) -> pd.Series:
    """Release year of each movie (float, NaN when unknown): the title's
    trailing "(1995)", else the year of ``release_date`` (ml-100k's
    "01-Jan-1995")."""
    years = pd.to_numeric(items["title"].astype(str).str.extract(_TITLE_YEAR, expand=False), errors="coerce")
    if "release_date" in items.columns:
        dates = pd.to_datetime(items["release_date"].astype(str), format="%d-%b-%Y", errors="coerce")
        years = years.fillna(dates.dt.year)
    return years


def _year_features(items: pd.DataFrame, item_ids: np.ndarray, decade: bool):
    years = _release_years(items)
    known = years.notna().to_numpy()
    rows = encode_ids(items["item_id"].to_numpy()[known], item_ids)
    values = years[known].astype(np.int64)
    if decade:
        labels = (values // 10 * 10).astype(str) + "s"
        return multi_hot(rows, labels, len(item_ids), "decade")
    return multi_hot(rows, values.astype(str), len(item_ids), "year")


def _title_words(items: pd.DataFrame, item_ids: np.ndarray, min_word_items: int):
    """Lower-cased words (runs of letters and digits) of each title, its year removed,
    kept when at least ``min_word_items`` distinct movies have them."""
    titles = items["title"].astype(str).str.replace(_TITLE_YEAR, "", regex=True).str.lower()
    pairs = pd.DataFrame({"item_id": items["item_id"].to_numpy(), "word": titles.str.findall(r"[^\W_]+")})
    pairs = pairs.explode("word").dropna().drop_duplicates()
    counts = pairs["word"].value_counts()
    pairs = pairs[pairs["word"].map(counts).to_numpy() >= min_word_items]
    rows = encode_ids(pairs["item_id"].to_numpy(), item_ids)
    return multi_hot(rows, pairs["word"].astype(str), len(item_ids), "title")


def _zip_regions(zip_codes: pd.Series) -> pd.Series:
    """First digit of a US zip code; ``"other"`` for codes that do not start
    with a digit (ml-100k has a few Canadian postal codes)."""
    first = zip_codes.astype(str).str.strip().str[:1]
    return first.where(first.str.fullmatch(r"\d"), "other")


def _user_features(users: pd.DataFrame, user_ids: np.ndarray, parts: tuple[str, ...] = _DEFAULT_USER_PARTS):
    rows = encode_ids(users["user_id"].to_numpy(), user_ids)
    columns = {
        "age": users["age_group"],
        "gender": users["gender"],
        "occupation": users["occupation"],
        "zip": _zip_regions(users["zip_code"]) if "zip_code" in users.columns else None,
    }
    return _side_by_side(
        [multi_hot(rows, columns[part].astype(str), len(user_ids), part) for part in parts if columns[part] is not None]
    )


def _parse_parts(value: str | bool | None, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """The blocks named by a ``"+"``-joined feature spec, in the order given."""
    if value is None or value is False:
        return ()
    if value is True:
        return _DEFAULT_USER_PARTS
    parts = tuple(value.split("+")) if isinstance(value, str) else ()
    if not parts or any(p not in allowed for p in parts) or len(set(parts)) != len(parts):
        extra = " or a bool (True: 'age+gender+occupation')" if name == "user_features" else ""
        raise ValueError(
            f"{name} must be None, one of {allowed} or several of them joined by '+' (each once){extra}, got {value!r}"
        )
    return parts


def _build(
    tables: dict[str, pd.DataFrame | None],
    threshold: float | None,
    item_features: tuple[str, ...],
    user_features: tuple[str, ...],
    min_tag_items: int,
    min_word_items: int = 5,
) -> Interactions:
    ratings, items, users = tables["ratings"], tables["items"], tables["users"]
    raw_users = ratings["user_id"].to_numpy()
    raw_items = ratings["item_id"].to_numpy()
    user_ids = _sorted_ids(raw_users, [] if users is None else users["user_id"].to_numpy())
    item_ids = _sorted_ids(raw_items, items["item_id"].to_numpy())
    u = encode_ids(raw_users, user_ids)
    i = encode_ids(raw_items, item_ids)
    if threshold is None:
        positive = np.ones(len(ratings), dtype=bool)
    else:
        positive = ratings["rating"].to_numpy() >= threshold
    negatives = None
    if not positive.all():
        negative = ~positive
        negatives = sp.csr_matrix(
            (np.ones(int(negative.sum()), np.float32), (u[negative], i[negative])),
            shape=(len(user_ids), len(item_ids)),
        )
        negatives.data[:] = 1.0

    ufeat = unames = ifeat = inames = None
    if user_features and users is not None:
        ufeat, unames = _user_features(users, user_ids, user_features)
    if item_features:
        builders = {
            "genres": lambda: _genre_features(items, item_ids),
            "tags": lambda: _tag_features(tables["tags"], item_ids, min_tag_items),
            "year": lambda: _year_features(items, item_ids, decade=False),
            "decade": lambda: _year_features(items, item_ids, decade=True),
            "title": lambda: _title_words(items, item_ids, min_word_items),
        }
        ifeat, inames = _side_by_side([builders[part]() for part in item_features])
        if ifeat.shape[1] == 0:  # e.g. tags asked of a release without tags
            ifeat = inames = None

    data = build_interactions(
        IdAxis(user_ids, ufeat, unames),
        IdAxis(item_ids, ifeat, inames),
        u[positive],
        i[positive],
        timestamps=ratings["timestamp"].to_numpy()[positive],
        negatives=negatives,
    )
    titles = items.drop_duplicates("item_id").set_index("item_id")["title"]
    data.item_titles = titles.reindex(item_ids).fillna("").to_numpy(dtype=object)
    return data


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------
def load_movielens(
    name: str = "ml-100k",
    *,
    data_home: str | os.PathLike | None = None,
    download: bool = True,
    threshold: float | None = 4.0,
    item_features: str | None = "genres",
    user_features: bool | str = True,
    as_frame: bool = False,
    base_url: str | None = None,
    checksum: str | None = None,
    min_tag_items: int = 5,
    min_word_items: int = 5,
) -> Interactions | MovieLensFrames:
    """Load a MovieLens release as implicit feedback.

    Parameters
    ----------
    name : {"ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-latest-small"}
        Release.
    data_home : path, optional
        Cache folder; default ``$SKBPR_DATA``, else ``~/skbpr_data``.
        Extracted files in ``data_home/<name>/`` are used as they are.
    download : bool
        Whether to download the archive when it is not cached; ``False``
        raises ``OSError`` naming the file to put where.
    threshold : float or None
        Ratings ``>= threshold`` are positives, lower ratings implicit
        negatives; ``None`` makes every rating a positive.  The default 4.0
        keeps "liked" movies (4 or 5 of 5 stars).  A threshold of 3.5, used
        elsewhere, selects the same ratings on the integer-star releases
        (100k, 1m) but also counts 3.5-star ratings on the half-star ones.
    item_features : str or None
        Blocks of multi-hot item features, one of ``"genres"``, ``"tags"``,
        ``"year"``, ``"decade"``, ``"title"`` or several joined by ``"+"``
        (``"genres+decade+title"``), in that order in the matrix:

        * ``genres``: ``genre=<g>``;
        * ``tags``: ``tag=<t>``, lower-cased, from ``tags.csv`` /
          ``tags.dat`` when the release has them, kept when applied to at
          least ``min_tag_items`` movies;
        * ``year`` / ``decade``: ``year=1995`` / ``decade=1990s``, the
          release year from the title's trailing ``(1995)``, else from
          ml-100k's release date; movies without either get no column;
        * ``title``: ``title=<word>``, the lower-cased words (runs of
          letters and digits) of the title without its year, kept when at
          least ``min_word_items`` movies have them.
    user_features : bool or str
        ``True``: one-hot age group, gender and occupation (``age=18-24``,
        ``gender=F``, ``occupation=writer``); ``False``: none; or blocks
        among ``"age"``, ``"gender"``, ``"occupation"``, ``"zip"`` joined by
        ``"+"``, where ``zip`` is the zip region, the first digit of the zip
        code (``zip=9``; ``zip=other`` for codes that do not start with a
        digit).  Only 100k and 1m have user features.
    as_frame : bool
        Return the parsed tables instead of a container.
    base_url : str, optional
        Mirror to download ``<base_url>/<name>.zip`` from; default GroupLens.
    checksum : str, optional
        ``"md5:<hex>"``, ``"sha256:<hex>"`` (or a bare hex digest) that the
        archive must match; overrides the built-in table of GroupLens MD5s.
    min_tag_items : int
        Minimum number of distinct movies carrying a tag for it to become a
        feature.
    min_word_items : int
        Minimum number of distinct movies whose titles hold a word for it to
        become a feature.

    Returns
    -------
    Interactions or MovieLensFrames
        The container over every user and movie in the files (positives with
        their timestamps, negatives, features, raw ``user_ids`` /
        ``item_ids``) with one extra attribute ``item_titles`` (titles
        aligned with ``item_ids``, carried by selections).  With
        ``as_frame=True``: a named tuple of DataFrames ``ratings`` (user_id,
        item_id, rating, timestamp), ``items`` (item_id, title, genres as
        ``|``-joined text, ...), ``users`` and ``tags`` (``None`` when the
        release has none).

    Examples
    --------
    A tiny copy of ``ml-latest-small`` written where ``data_home`` points
    is read without downloading:

    >>> import shutil, tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from skbpr.datasets import load_movielens
    >>> home = Path(tempfile.mkdtemp())
    >>> folder = home / "ml-latest-small"
    >>> folder.mkdir()
    >>> ratings = {"userId": [1, 1, 2], "movieId": [10, 20, 10], "rating": [5.0, 2.0, 4.5], "timestamp": [1, 2, 3]}
    >>> pd.DataFrame(ratings).to_csv(folder / "ratings.csv", index=False)
    >>> movies = {"movieId": [10, 20], "title": ["Heat (1995)", "Up (2009)"], "genres": ["Action|Crime", "Animation"]}
    >>> pd.DataFrame(movies).to_csv(folder / "movies.csv", index=False)
    >>> data = load_movielens("ml-latest-small", data_home=home, download=False)
    >>> data.n_users, data.n_items, data.n_positives, data.n_negatives
    (2, 2, 2, 1)
    >>> data.item_ids.tolist(), data.item_feature_names.tolist()
    ([10, 20], ['genre=Action', 'genre=Animation', 'genre=Crime'])
    >>> shutil.rmtree(home)
    """
    if not isinstance(name, str) or name not in RELEASES:
        raise ValueError(f"name must be one of {sorted(RELEASES)}, got {name!r}")
    release = RELEASES[name]
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not (np.isfinite(threshold)):
            raise ValueError(f"threshold must be a finite number or None, got {threshold!r}")
        threshold = float(threshold)
    if isinstance(item_features, bool):
        raise ValueError(f"item_features must be a string or None, got {item_features!r}")
    item_parts = _parse_parts(item_features, "item_features", _ITEM_PARTS)
    if isinstance(user_features, np.bool_):
        user_features = bool(user_features)
    user_parts = _parse_parts(user_features, "user_features", _USER_PARTS)
    for argument, value in (("download", download), ("as_frame", as_frame)):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{argument} must be a bool, got {value!r}")
    for argument, value in (("min_tag_items", min_tag_items), ("min_word_items", min_word_items)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{argument} must be an integer >= 1, got {value!r}")
    if base_url is not None and (not isinstance(base_url, str) or not base_url.strip()):
        raise ValueError(f"base_url must be a non-empty string, got {base_url!r}")
    expected = parse_checksum(checksum, release.md5)
    home = get_data_home(data_home)
    url = (base_url or BASE_URL).rstrip("/") + f"/{name}.zip"

    folder = find_extracted(home, name, release)
    if folder is None:
        folder = obtain(name, release, home, url, expected, download)

    tables = READERS[release.layout](folder)
    if as_frame:
        return MovieLensFrames(**tables)
    return _build(tables, threshold, item_parts, user_parts, int(min_tag_items), int(min_word_items))
