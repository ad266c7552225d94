"""Downloading and caching the MovieLens archives: the releases, their checksums, resumable downloads, safe extraction.

:func:`obtain` returns the extracted folder of a release, from the cache
(:func:`get_data_home`) or downloaded; :mod:`skbpr.data.datasets.movielens`
parses it.
"""

from __future__ import annotations

import hashlib
import http.client
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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


BASE_URL = "https://files.grouplens.org/datasets/movielens/"

_TIMEOUT = 60.0

_MAX_RETRIES = 3

_CHUNK = 1 << 20

_MiB = 1 << 20

# Extraction bounds against zip bombs: a member (or the whole archive) larger
# than _RATIO_FLOOR may expand at most MAX_COMPRESSION_RATIO-fold (text data
# such as MovieLens compresses 3- to 10-fold; a bomb, about 1000-fold), and the
# members of a release together at most its ``max_bytes``.
MAX_COMPRESSION_RATIO = 100

_RATIO_FLOOR = _MiB


@dataclass(frozen=True)
class Release:
    folder: str  # top folder inside the archive
    ratings: str  # file whose presence marks an extracted copy
    layout: str  # "100k", "dat" or "csv"
    md5: str | None
    max_bytes: int  # most bytes its members may expand to: about four times the published release


RELEASES = {
    "ml-100k": Release("ml-100k", "u.data", "100k", "0e33842e24a9c977be4e0107933c0723", 64 * _MiB),
    "ml-1m": Release("ml-1m", "ratings.dat", "dat", "c4d9eecfca2ab87c1945afe126590906", 128 * _MiB),
    "ml-10m": Release("ml-10M100K", "ratings.dat", "dat", "ce571fd55effeba0271552578f2648bd", 1024 * _MiB),
    "ml-20m": Release("ml-20m", "ratings.csv", "csv", "cd245b17a1ae2cc31bb14903e1204af3", 4096 * _MiB),
    "ml-25m": Release("ml-25m", "ratings.csv", "csv", "6b51fb2759a8657d3bfcbfc42b592ada", 4096 * _MiB),
    "ml-latest-small": Release("ml-latest-small", "ratings.csv", "csv", None, 64 * _MiB),
}

RELEASE_NAMES: tuple[str, ...] = tuple(sorted(RELEASES))  # the names load_movielens takes


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """Cache folder: ``data_home``, else ``$SKBPR_DATA``, else ``~/skbpr_data``."""
    if data_home is None:
        data_home = os.environ.get("SKBPR_DATA") or Path("~") / "skbpr_data"
    return Path(data_home).expanduser()


def parse_checksum(checksum: str | None, default_md5: str | None) -> tuple[str, str] | None:
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


def find_extracted(home: Path, name: str, release: Release) -> Path | None:
    for folder in (home / name, home / release.folder, home / name / release.folder):
        if (folder / release.ratings).is_file():
            return folder
    return None


def _unavailable(name: str, home: Path, release: Release, url: str, reason: str) -> OSError:
    return OSError(
        f"MovieLens {name!r} is not available: {reason}. Put the extracted files in "
        f"{home / name}{os.sep} (for example {home / name / release.ratings}) or the "
        f"archive at {home / (name + '.zip')}; the archive is published at {url}."
    )


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


def _expansion_problem(path: Path, max_bytes: int) -> str | None:
    """Why the members of the zip archive at ``path`` expand too far (see ``MAX_COMPRESSION_RATIO``), or None.

    Read from the archive's directory, before anything is decompressed;
    an archive that is not a zip is left to :func:`_zip_problem`.
    """
    try:
        with zipfile.ZipFile(path) as bundle:
            members = [info for info in bundle.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError):
        return None
    total = sum(info.file_size for info in members)
    if total > max_bytes:
        return f"its members expand to {total} bytes, more than the limit of {max_bytes} bytes for this release"
    packed = sum(info.compress_size for info in members)
    wholes = [(f"member {info.filename!r}", info.file_size, info.compress_size) for info in members]
    for what, size, compressed in [*wholes, ("the archive", total, packed)]:
        if size > _RATIO_FLOOR and size > MAX_COMPRESSION_RATIO * max(compressed, 1):
            return (
                f"{what} expands {size / max(compressed, 1):.0f}-fold ({compressed} to {size} bytes), more than "
                f"the limit of {MAX_COMPRESSION_RATIO}-fold for anything over {_RATIO_FLOOR} bytes"
            )
    return None


def _fetch_archive(url: str, archive: Path, expected: tuple[str, str] | None, release: Release) -> None:
    """Download ``url`` to ``archive`` atomically, verifying ``expected``, its expansion and the zip structure.

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
            expansion = _expansion_problem(tmp, release.max_bytes)
            if expansion is not None:
                raise ValueError(
                    f"refusing to extract the download of {url} for {archive}: {expansion}; the download was deleted"
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


def _check_cached(archive: Path, expected: tuple[str, str] | None, release: Release) -> None:
    """Refuse a cached archive that fails its checksum, expands too far or is not a valid zip archive."""
    if expected is not None and _hash_file(archive, expected[0]) != expected[1]:
        raise OSError(f"{archive} does not match {expected[0]}:{expected[1]}; delete it or pass the right checksum=")
    expansion = _expansion_problem(archive, release.max_bytes)
    if expansion is not None:
        raise ValueError(f"refusing to extract {archive}: {expansion}; delete it and call again to download it anew")
    problem = _zip_problem(archive)
    if problem is not None:
        raise OSError(f"{archive} is not a valid zip archive ({problem}); delete it and call again to download it anew")


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


def _extract(archive: Path, home: Path, name: str, release: Release) -> Path:
    """Extract ``archive`` and move its top folder to ``home / name``.

    Everything extracted is counted against ``release.max_bytes`` as it is
    written (the sizes the archive announces were checked before); whatever
    was extracted is removed when the extraction fails.
    """
    target = home / name
    with zipfile.ZipFile(archive) as bundle:
        members = bundle.infolist()
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=home)).resolve()
        try:
            for info in members:  # all checked before anything is written
                _check_member(info, tmp, archive)
            written = 0
            for info in members:
                path = tmp / info.filename
                if info.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(info) as source, open(path, "wb") as sink:
                    for block in iter(lambda source=source: source.read(_CHUNK), b""):
                        written += len(block)
                        if written > release.max_bytes:
                            raise ValueError(
                                f"refusing to extract {archive}: its members expand to more than the limit of "
                                f"{release.max_bytes} bytes for this release"
                            )
                        sink.write(block)
            found = find_extracted(tmp, release.folder, release)
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


def obtain(name: str, release: Release, home: Path, url: str, expected: tuple[str, str] | None, download: bool) -> Path:
    """The extracted folder, from the cached archive or a download.

    Another process loading into the same ``home`` may extract and delete
    the archive meanwhile: its folder is then used.
    """
    archive = home / f"{name}.zip"
    downloaded = False
    try:
        if archive.is_file():
            _check_cached(archive, expected, release)
        elif not download:
            raise _unavailable(name, home, release, url, "download=False and no cached copy")
        else:
            try:
                _fetch_archive(url, archive, expected, release)
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
                raise _unavailable(name, home, release, url, f"downloading failed ({exc})") from exc
            downloaded = True
        try:
            folder = _extract(archive, home, name, release)
        except ValueError as exc:  # a refused archive must not stay to be refused by every later call
            if downloaded:
                archive.unlink(missing_ok=True)
                raise ValueError(f"{exc}; the download was deleted") from None
            raise ValueError(f"{exc}; delete {archive} and call again to download it anew") from None
    except FileNotFoundError:
        folder = find_extracted(home, name, release)
        if folder is None:
            raise
        return folder
    archive.unlink(missing_ok=True)
    return folder
