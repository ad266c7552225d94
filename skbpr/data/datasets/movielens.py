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

import csv
import hashlib
import http.client
import io
import numbers
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from skbpr.data.interactions import encode_ids

if TYPE_CHECKING:
    from skbpr.data.interactions import Interactions

BASE_URL = "https://files.grouplens.org/datasets/movielens/"
_TIMEOUT = 60.0
_MAX_RETRIES = 3
_CHUNK = 1 << 20
_ITEM_FEATURES = ("genres", "tags", "genres+tags")
_NO_GENRE = "(no genres listed)"

_GENRES_100K = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
_AGE_GROUPS = {
    1: "Under 18",
    18: "18-24",
    25: "25-34",
    35: "35-44",
    45: "45-49",
    50: "50-55",
    56: "56+",
}
_OCCUPATIONS_1M = (
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
)


class MovieLensFrames(NamedTuple):
    """Parsed MovieLens tables (``load_movielens(..., as_frame=True)``)."""

    ratings: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None
    tags: pd.DataFrame | None


@dataclass(frozen=True)
class _Release:
    folder: str  # top folder inside the archive
    ratings: str  # file whose presence marks an extracted copy
    layout: str  # "100k", "dat" or "csv"
    md5: str | None


_RELEASES = {
    "ml-100k": _Release("ml-100k", "u.data", "100k", "0e33842e24a9c977be4e0107933c0723"),
    "ml-1m": _Release("ml-1m", "ratings.dat", "dat", "c4d9eecfca2ab87c1945afe126590906"),
    "ml-10m": _Release("ml-10M100K", "ratings.dat", "dat", "ce571fd55effeba0271552578f2648bd"),
    "ml-20m": _Release("ml-20m", "ratings.csv", "csv", "cd245b17a1ae2cc31bb14903e1204af3"),
    "ml-25m": _Release("ml-25m", "ratings.csv", "csv", "6b51fb2759a8657d3bfcbfc42b592ada"),
    "ml-latest-small": _Release("ml-latest-small", "ratings.csv", "csv", None),
}
RELEASE_NAMES: tuple[str, ...] = tuple(sorted(_RELEASES))  # the names load_movielens takes


# --------------------------------------------------------------------------
# arguments and cache
# --------------------------------------------------------------------------
def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """Cache folder: ``data_home``, else ``$SKBPR_DATA``, else ``~/skbpr_data``."""
    if data_home is None:
        data_home = os.environ.get("SKBPR_DATA") or Path("~") / "skbpr_data"
    return Path(data_home).expanduser()


def _parse_checksum(checksum: str | None, default_md5: str | None) -> tuple[str, str] | None:
    """``(algorithm, hex digest)`` to verify, or None."""
    if checksum is None:
        return None if default_md5 is None else ("md5", default_md5)
    if not isinstance(checksum, str):
        raise ValueError(f"checksum must be a string such as 'md5:<hex>', got {checksum!r}")
    algorithm, _, digest = checksum.strip().lower().rpartition(":")
    if not algorithm:
        algorithm = {32: "md5", 64: "sha256"}.get(len(digest), "")
    lengths = {"md5": 32, "sha1": 40, "sha256": 64}
    if algorithm not in lengths or not re.fullmatch(f"[0-9a-f]{{{lengths[algorithm]}}}", digest):
        raise ValueError(
            "checksum must be 'md5:<32 hex>', 'sha1:<40 hex>', 'sha256:<64 hex>' or a bare "
            f"MD5/SHA-256 hex digest, got {checksum!r}"
        )
    return algorithm, digest


def _find_extracted(home: Path, name: str, release: _Release) -> Path | None:
    for folder in (home / name, home / release.folder, home / name / release.folder):
        if (folder / release.ratings).is_file():
            return folder
    return None


def _unavailable(name: str, home: Path, release: _Release, url: str, reason: str) -> OSError:
    return OSError(
        f"MovieLens {name!r} is not available: {reason}. Put the extracted files in "
        f"{home / name}{os.sep} (for example {home / name / release.ratings}) or the "
        f"archive at {home / (name + '.zip')}; the archive is published at {url}."
    )


# --------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------
def _hash_file(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _expected_size(response: Any, offset: int) -> int | None:
    """Total size announced by the server (Content-Range, else Content-Length)."""
    content_range = response.headers.get("Content-Range")
    if content_range:
        match = re.fullmatch(r"bytes\s+\d+-\d+/(\d+)", content_range.strip())
        if match:
            return int(match.group(1))
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit():
        return offset + int(length)
    return None


def _download(url: str, part: Path) -> None:
    """Fill ``part`` with ``url``, resuming it with HTTP Range requests.

    Connection failures before any response are raised at once; a response
    cut short is resumed up to ``_MAX_RETRIES`` times.
    """
    for attempt in range(_MAX_RETRIES + 1):
        offset = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": "skbpr"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=_TIMEOUT)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:
                return  # nothing left to fetch; the checksum decides
            raise
        with response:
            resumed = offset > 0 and response.status == 206
            content_range = response.headers.get("Content-Range", "")
            if resumed and not re.match(rf"bytes\s+{offset}-", content_range.strip()):
                resumed = False
            if not resumed:
                offset = 0
            total = _expected_size(response, offset)
            try:
                with open(part, "ab" if resumed else "wb") as handle:
                    shutil.copyfileobj(response, handle, _CHUNK)
            except (OSError, ValueError, http.client.HTTPException) as exc:
                # connection reset or response cut short: resume from the .part
                if attempt == _MAX_RETRIES:
                    raise ConnectionError(f"download of {url} was interrupted: {exc}") from exc
                time.sleep(0.1 * (attempt + 1))
                continue
        size = part.stat().st_size
        if total is None or size >= total:
            return
        if attempt == _MAX_RETRIES:
            raise ConnectionError(f"download of {url} stopped at {size} of {total} bytes")
        time.sleep(0.1 * (attempt + 1))


def _zip_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable zip archive (every member's CRC is checked), or None."""
    try:
        with zipfile.ZipFile(path) as bundle:
            bad = bundle.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if bad is not None:
        return f"member {bad!r} fails its CRC check"
    return None


def _fetch_archive(url: str, archive: Path, expected: tuple[str, str] | None) -> None:
    """Download ``url`` to ``archive`` atomically, verifying ``expected`` and the zip structure.

    The download goes to a temporary file of this call's own beside
    ``archive`` (a ``<archive>.part`` left by an interrupted call is claimed
    with an atomic rename and resumed); only a verified archive is moved into
    place, with ``os.replace``.
    """
    archive.parent.mkdir(parents=True, exist_ok=True)
    resumable = archive.with_name(archive.name + ".part")
    handle, name = tempfile.mkstemp(prefix=f".{archive.name}.", suffix=".part", dir=archive.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        try:
            os.replace(resumable, tmp)  # atomic: of several processes, one gets it
        except FileNotFoundError:
            pass
        for attempt in range(2):
            try:
                _download(url, tmp)
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException):
                if tmp.stat().st_size:
                    os.replace(tmp, resumable)  # kept for the next call to resume
                raise
            if expected is not None:
                algorithm, digest = expected
                actual = _hash_file(tmp, algorithm)
                if actual != digest:
                    raise OSError(
                        f"checksum mismatch for {url}: expected {algorithm}:{digest}, got "
                        f"{algorithm}:{actual}; the download was deleted"
                    )
            problem = _zip_problem(tmp)
            if problem is None:
                break
            if attempt == 0 and expected is None:
                tmp.write_bytes(b"")  # cut short without a Content-Length: fetch it anew
                continue
            raise OSError(
                f"the download of {url} for {archive} is not a valid zip archive ({problem}); "
                "the download was deleted, call again to retry"
            )
        os.replace(tmp, archive)
    finally:
        tmp.unlink(missing_ok=True)


def _check_cached(archive: Path, expected: tuple[str, str] | None) -> None:
    """Refuse a cached archive that fails its checksum or is not a valid zip archive."""
    if expected is not None and _hash_file(archive, expected[0]) != expected[1]:
        raise OSError(f"{archive} does not match {expected[0]}:{expected[1]}; delete it or pass the right checksum=")
    problem = _zip_problem(archive)
    if problem is not None:
        raise OSError(f"{archive} is not a valid zip archive ({problem}); delete it and call again to download it anew")


# --------------------------------------------------------------------------
# extraction
# --------------------------------------------------------------------------
def _check_member(info: zipfile.ZipInfo, root: Path, archive: Path) -> None:
    name = info.filename
    parts = re.split(r"[\\/]+", name)
    mode = (info.external_attr >> 16) & 0o170000
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        reason = "is an absolute path"
    elif ".." in parts:
        reason = "contains '..'"
    elif mode == 0o120000:
        reason = "is a symbolic link"
    elif not (root / name).resolve().is_relative_to(root):
        reason = "resolves outside the target folder"
    else:
        return
    raise ValueError(f"refusing to extract {archive}: member {name!r} {reason}")


def _extract(archive: Path, home: Path, name: str, release: _Release) -> Path:
    """Extract ``archive`` and move its top folder to ``home / name``."""
    target = home / name
    with zipfile.ZipFile(archive) as bundle:
        members = bundle.infolist()
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=home)).resolve()
        try:
            for info in members:  # all checked before anything is written
                _check_member(info, tmp, archive)
            for info in members:
                path = tmp / info.filename
                if info.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(info) as source, open(path, "wb") as sink:
                    shutil.copyfileobj(source, sink, _CHUNK)
            found = _find_extracted(tmp, release.folder, release)
            if found is None and (tmp / release.ratings).is_file():
                found = tmp  # archive without a top folder
            if found is None:
                raise ValueError(
                    f"{archive} has no {release.folder}/{release.ratings}; is it a MovieLens {name!r} archive?"
                )
            if (target / release.ratings).is_file():
                return target  # placed by another process meanwhile
            if target.is_dir() and not any(target.iterdir()):
                target.rmdir()
            try:
                os.replace(found, target)
            except OSError:
                if (target / release.ratings).is_file():
                    return target  # another process won the race
                raise OSError(
                    f"{target} exists without {release.ratings}; remove it so that {archive} can be extracted there"
                ) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _obtain(
    name: str, release: _Release, home: Path, url: str, expected: tuple[str, str] | None, download: bool
) -> Path:
    """The extracted folder, from the cached archive or a download.

    Another process loading into the same ``home`` may extract and delete
    the archive meanwhile: its folder is then used.
    """
    archive = home / f"{name}.zip"
    try:
        if archive.is_file():
            _check_cached(archive, expected)
        elif not download:
            raise _unavailable(name, home, release, url, "download=False and no cached copy")
        else:
            try:
                _fetch_archive(url, archive, expected)
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
                raise _unavailable(name, home, release, url, f"downloading failed ({exc})") from exc
        folder = _extract(archive, home, name, release)
    except FileNotFoundError:
        folder = _find_extracted(home, name, release)
        if folder is None:
            raise
        return folder
    archive.unlink(missing_ok=True)
    return folder


# --------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------
def _read_dat(path: Path, names: list[str], dtype: dict | None = None) -> pd.DataFrame:
    """``::``-separated file, read with the C parser (``::`` becomes a tab).

    Text is UTF-8 where it decodes as such, else Latin-1 (ml-1m).
    """
    raw = path.read_bytes().replace(b"::", b"\t")
    try:
        return _read_tab(raw, names, dtype, "utf-8")
    except UnicodeDecodeError:
        return _read_tab(raw, names, dtype, "latin-1")


def _read_tab(raw: bytes, names: list[str], dtype: dict | None, encoding: str) -> pd.DataFrame:
    return pd.read_csv(
        io.BytesIO(raw),
        sep="\t",
        header=None,
        names=names,
        dtype=dtype,
        encoding=encoding,
        quoting=csv.QUOTE_NONE,
        keep_default_na=False,
    )


_RATING_DTYPES = {"user_id": np.int64, "item_id": np.int64, "rating": np.float32, "timestamp": np.int64}


def _read_100k(folder: Path) -> dict[str, pd.DataFrame | None]:
    ratings = pd.read_csv(
        folder / "u.data",
        sep="\t",
        header=None,
        names=list(_RATING_DTYPES),
        dtype=_RATING_DTYPES,
    )
    genres = list(_GENRES_100K)
    if (folder / "u.genre").is_file():
        table = pd.read_csv(
            folder / "u.genre", sep="|", header=None, names=["genre", "code"], encoding="latin-1", keep_default_na=False
        )
        table = table[table["genre"] != ""]
        genres = table.sort_values("code")["genre"].tolist()
    names = ["item_id", "title", "release_date", "video_release_date", "imdb_url", *genres]
    items = pd.read_csv(
        folder / "u.item",
        sep="|",
        header=None,
        names=names,
        encoding="latin-1",
        quoting=csv.QUOTE_NONE,
        keep_default_na=False,
    )
    flags = items[genres].to_numpy(dtype=np.int64)
    # Object matmul concatenates strings: 1 * "Drama|" + 0 * "Comedy|" ...
    joined = flags.astype(object) @ np.array([g + "|" for g in genres], dtype=object)
    items = items[["item_id", "title", "release_date", "imdb_url"]].assign(
        genres=pd.Series(joined, dtype=object).str.rstrip("|")
    )
    items.attrs["genre_vocabulary"] = genres  # all 19 flags, even unused ones
    users = None
    if (folder / "u.user").is_file():
        users = pd.read_csv(
            folder / "u.user",
            sep="|",
            header=None,
            names=["user_id", "age", "gender", "occupation", "zip_code"],
            dtype={"zip_code": str},
            encoding="latin-1",
            keep_default_na=False,
        )
        bins = [-np.inf, 18, 25, 35, 45, 50, 56, np.inf]
        groups = pd.cut(users["age"], bins, right=False, labels=list(_AGE_GROUPS.values()))
        users.insert(2, "age_group", groups.astype(str))
    return {"ratings": ratings, "items": items, "users": users, "tags": None}


def _read_dat_release(folder: Path) -> dict[str, pd.DataFrame | None]:
    ratings = _read_dat(folder / "ratings.dat", list(_RATING_DTYPES), _RATING_DTYPES)
    items = _read_dat(folder / "movies.dat", ["item_id", "title", "genres"], {"item_id": np.int64})
    users = None
    if (folder / "users.dat").is_file():
        users = _read_dat(
            folder / "users.dat",
            ["user_id", "gender", "age", "occupation", "zip_code"],
            {"user_id": np.int64, "age": np.int64, "occupation": np.int64, "zip_code": str},
        )
        users = users[["user_id", "age", "gender", "occupation", "zip_code"]]
        users.insert(2, "age_group", users["age"].map(_AGE_GROUPS).fillna("unknown"))
        users["occupation"] = users["occupation"].map(dict(enumerate(_OCCUPATIONS_1M))).fillna("unknown")
    tags = None
    if (folder / "tags.dat").is_file():
        tags = _read_dat(
            folder / "tags.dat",
            ["user_id", "item_id", "tag", "timestamp"],
            {"user_id": np.int64, "item_id": np.int64, "tag": str},
        )
    return {"ratings": ratings, "items": items, "users": users, "tags": tags}


def _read_csv_release(folder: Path) -> dict[str, pd.DataFrame | None]:
    columns = {"userId": "user_id", "movieId": "item_id"}
    ratings = pd.read_csv(
        folder / "ratings.csv",
        dtype={"userId": np.int64, "movieId": np.int64, "rating": np.float32, "timestamp": np.int64},
    ).rename(columns=columns)
    items = pd.read_csv(folder / "movies.csv", dtype={"movieId": np.int64}, keep_default_na=False).rename(
        columns=columns
    )
    tags = None
    if (folder / "tags.csv").is_file():
        tags = pd.read_csv(folder / "tags.csv", dtype={"tag": str}, keep_default_na=False).rename(columns=columns)
    return {"ratings": ratings, "items": items, "users": None, "tags": tags}


_READERS = {"100k": _read_100k, "dat": _read_dat_release, "csv": _read_csv_release}


# --------------------------------------------------------------------------
# container
# --------------------------------------------------------------------------
def _sorted_ids(*arrays: np.ndarray) -> np.ndarray:
    return np.sort(pd.unique(np.concatenate([np.asarray(a, dtype=np.int64) for a in arrays])))


def _binary_matrix(
    rows: np.ndarray, labels: pd.Series, n_rows: int, prefix: str, vocabulary: list[str] | None = None
) -> tuple[sp.csr_matrix, np.ndarray]:
    """One column per label of ``vocabulary`` (default: the sorted distinct
    labels), 1 where (row, label) occurs."""
    if vocabulary is None:
        codes, names = pd.factorize(labels, sort=True)
    else:
        codes, names = pd.Categorical(labels, categories=vocabulary).codes, vocabulary
    keep = codes >= 0
    matrix = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (rows[keep], codes[keep])),
        shape=(n_rows, len(names)),
    )
    matrix.data[:] = 1.0  # repeated pairs count once
    return matrix, np.array([f"{prefix}={name}" for name in names], dtype=object)


def _genre_features(items: pd.DataFrame, item_ids: np.ndarray):
    genres = items[["item_id", "genres"]].assign(genre=items["genres"].astype(str).str.split("|"))
    genres = genres.explode("genre")
    genres = genres[(genres["genre"] != "") & (genres["genre"] != _NO_GENRE)]
    genres = genres[genres["genre"].notna()]
    rows = encode_ids(genres["item_id"].to_numpy(), item_ids)
    vocabulary = items.attrs.get("genre_vocabulary")
    return _binary_matrix(rows, genres["genre"].astype(str), len(item_ids), "genre", vocabulary)


def _tag_features(tags: pd.DataFrame | None, item_ids: np.ndarray, min_tag_items: int):
    if tags is None:
        return sp.csr_matrix((len(item_ids), 0), dtype=np.float32), np.array([], dtype=object)
    tag = tags["tag"].astype(str).str.strip().str.lower()
    pairs = pd.DataFrame({"item_id": tags["item_id"].to_numpy(), "tag": tag})
    pairs = pairs[pairs["tag"] != ""].drop_duplicates()
    counts = pairs["tag"].value_counts()
    pairs = pairs[pairs["tag"].map(counts).to_numpy() >= min_tag_items]
    rows = encode_ids(pairs["item_id"].to_numpy(), item_ids)
    return _binary_matrix(rows, pairs["tag"], len(item_ids), "tag")


def _user_features(users: pd.DataFrame, user_ids: np.ndarray):
    rows = encode_ids(users["user_id"].to_numpy(), user_ids)
    blocks, names = [], []
    for column, prefix in (("age_group", "age"), ("gender", "gender"), ("occupation", "occupation")):
        matrix, block_names = _binary_matrix(rows, users[column].astype(str), len(user_ids), prefix)
        blocks.append(matrix)
        names.append(block_names)
    return sp.hstack(blocks, format="csr", dtype=np.float32), np.concatenate(names)


def _build(
    tables: dict[str, pd.DataFrame | None],
    threshold: float | None,
    item_features: str | None,
    user_features: bool,
    min_tag_items: int,
) -> Interactions:
    from skbpr.data.interactions import Interactions

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
        ufeat, unames = _user_features(users, user_ids)
    if item_features is not None:
        blocks, names = [], []
        if "genres" in item_features:
            matrix, block_names = _genre_features(items, item_ids)
            blocks.append(matrix)
            names.append(block_names)
        if "tags" in item_features:
            matrix, block_names = _tag_features(tables["tags"], item_ids, min_tag_items)
            blocks.append(matrix)
            names.append(block_names)
        ifeat = sp.hstack(blocks, format="csr", dtype=np.float32)
        inames = np.concatenate(names)
        if ifeat.shape[1] == 0:  # e.g. tags asked of a release without tags
            ifeat = inames = None

    data = Interactions(
        u[positive],
        i[positive],
        n_users=len(user_ids),
        n_items=len(item_ids),
        timestamps=ratings["timestamp"].to_numpy()[positive],
        negatives=negatives,
        user_features=ufeat,
        item_features=ifeat,
        user_ids=user_ids,
        item_ids=item_ids,
        user_feature_names=unames,
        item_feature_names=inames,
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
    user_features: bool = True,
    as_frame: bool = False,
    base_url: str | None = None,
    checksum: str | None = None,
    min_tag_items: int = 5,
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
    item_features : {"genres", "tags", "genres+tags"} or None
        Multi-hot item features named ``genre=<g>`` / ``tag=<t>``.  Tags
        (lower-cased) come from ``tags.csv`` / ``tags.dat`` when the release
        has them and are kept when applied to at least ``min_tag_items``
        movies.
    user_features : bool
        One-hot age group, gender and occupation (``age=18-24``,
        ``gender=F``, ``occupation=writer``); only 100k and 1m have them.
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
    if not isinstance(name, str) or name not in _RELEASES:
        raise ValueError(f"name must be one of {sorted(_RELEASES)}, got {name!r}")
    release = _RELEASES[name]
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not (np.isfinite(threshold)):
            raise ValueError(f"threshold must be a finite number or None, got {threshold!r}")
        threshold = float(threshold)
    if item_features is not None and item_features not in _ITEM_FEATURES:
        raise ValueError(f"item_features must be one of {_ITEM_FEATURES} or None, got {item_features!r}")
    for argument, value in (("download", download), ("user_features", user_features), ("as_frame", as_frame)):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{argument} must be a bool, got {value!r}")
    if isinstance(min_tag_items, bool) or not isinstance(min_tag_items, numbers.Integral) or (min_tag_items < 1):
        raise ValueError(f"min_tag_items must be an integer >= 1, got {min_tag_items!r}")
    if base_url is not None and (not isinstance(base_url, str) or not base_url.strip()):
        raise ValueError(f"base_url must be a non-empty string, got {base_url!r}")
    expected = _parse_checksum(checksum, release.md5)
    home = get_data_home(data_home)
    url = (base_url or BASE_URL).rstrip("/") + f"/{name}.zip"

    folder = _find_extracted(home, name, release)
    if folder is None:
        folder = _obtain(name, release, home, url, expected, download)

    tables = _READERS[release.layout](folder)
    if as_frame:
        return MovieLensFrames(**tables)
    return _build(tables, threshold, item_features, user_features, int(min_tag_items))
