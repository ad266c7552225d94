"""MovieLens loader tests against a loopback HTTP server.

Every archive is built here from a handful of made-up rows in the layout of
the matching MovieLens release.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from skbpr.datasets import load_movielens
from skbpr.datasets.movielens import MovieLensFrames

# (user, item, rating, timestamp); user 4 and item 50 exist in the side tables only
RATINGS = [
    (1, 10, 5.0, 100),
    (1, 20, 3.0, 101),
    (1, 30, 4.0, 102),
    (2, 10, 4.0, 103),
    (2, 40, 1.0, 104),
    (3, 20, 5.0, 105),
    (3, 30, 2.0, 106),
    (3, 40, 4.0, 107),
]
HALF_STARS = [(2, 30, 3.5, 108), (3, 10, 4.5, 109)]
MOVIES = [
    (10, "Café Story (1995)", "Animation|Comedy"),
    (20, "Heist, The (1996)", "Crime|Thriller"),
    (30, 'Quoted "Title" (1997)', "Drama"),
    (40, "Space Thing (1998)", "Sci-Fi|Action"),
    (50, "Lost Film (1999)", ""),
]
USERS = [(1, 24, "M", "technician"), (2, 53, "F", "writer"), (3, 17, "M", "student"), (4, 30, "F", "writer")]
GENRES_100K = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip
TAGS = [(1, 10, "Funny", 200), (2, 10, "funny ", 201), (1, 20, "dark", 202), (3, 40, "funny", 203)]
NAMES = ["ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-latest-small"]
REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# --------------------------------------------------------------------------
# archive builders
# --------------------------------------------------------------------------
def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, content in members.items():
            bundle.writestr(name, content)
    return buffer.getvalue()


def _files_100k() -> dict[str, bytes]:
    data = "".join(f"{u}\t{i}\t{int(r)}\t{t}\n" for u, i, r, t in RATINGS)
    items = []
    for item, title, genres in MOVIES:
        flags = "|".join("1" if g in genres.split("|") else "0" for g in GENRES_100K)
        items.append(f"{item}|{title}|01-Jan-1995||http://example.invalid/{item}|{flags}\n")
    users = "".join(f"{u}|{age}|{sex}|{job}|0{u}123\n" for u, age, sex, job in USERS)
    genre = "".join(f"{g}|{k}\n" for k, g in enumerate(GENRES_100K)) + "\n"
    return {
        "u.data": data.encode(),
        "u.item": "".join(items).encode("latin-1"),
        "u.user": users.encode(),
        "u.genre": genre.encode(),
    }


def _files_dat(half_stars: bool, with_users: bool) -> dict[str, bytes]:
    rows = RATINGS + (HALF_STARS if half_stars else [])
    ratings = "".join(f"{u}::{i}::{r:g}::{t}\n" for u, i, r, t in rows)
    movies = "".join(f"{i}::{title}::{g or '(no genres listed)'}\n" for i, title, g in MOVIES)
    files = {"ratings.dat": ratings.encode(), "movies.dat": movies.encode("latin-1")}
    if with_users:
        codes = {"technician": 17, "writer": 20, "student": 4}
        buckets = {24: 18, 53: 50, 17: 1, 30: 25}
        files["users.dat"] = "".join(
            f"{u}::{sex}::{buckets[age]}::{codes[job]}::0{u}123\n" for u, age, sex, job in USERS
        ).encode()
    else:
        files["tags.dat"] = "".join(f"{u}::{i}::{tag}::{t}\n" for u, i, tag, t in TAGS).encode()
    return files


def _files_csv() -> dict[str, bytes]:
    rows = RATINGS + HALF_STARS
    ratings = "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{r:g},{t}\n" for u, i, r, t in rows)
    movies = "movieId,title,genres\n" + "".join(
        '{},"{}",{}\n'.format(i, title.replace('"', '""'), g or "(no genres listed)") for i, title, g in MOVIES
    )
    tags = "userId,movieId,tag,timestamp\n" + "".join(f"{u},{i},{tag},{t}\n" for u, i, tag, t in TAGS)
    return {"ratings.csv": ratings.encode(), "movies.csv": movies.encode(), "tags.csv": tags.encode()}


FOLDERS = {"ml-10m": "ml-10M100K"}


def release_files(name: str) -> dict[str, bytes]:
    if name == "ml-100k":
        return _files_100k()
    if name == "ml-1m":
        return _files_dat(half_stars=False, with_users=True)
    if name == "ml-10m":
        return _files_dat(half_stars=True, with_users=False)
    return _files_csv()


def release_archive(name: str) -> bytes:
    folder = FOLDERS.get(name, name)
    return _zip({f"{folder}/{file}": content for file, content in release_files(name).items()})


def md5(content: bytes) -> str:
    return "md5:" + hashlib.md5(content).hexdigest()


# --------------------------------------------------------------------------
# loopback server
# --------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        server = self.server
        requested = self.headers.get("Range")
        server.log.append((self.path, requested))
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if requested and not server.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", requested).group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        if server.cut_without_length > 0:  # no Content-Length: the client cannot tell the body was cut
            server.cut_without_length -= 1
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            return
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.path in server.truncate_once:
            server.truncate_once.discard(self.path)
            payload = payload[: len(payload) // 2]  # announced in full, then cut
        if server.pause:  # keep concurrent downloads overlapping
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            time.sleep(server.pause)
            payload = payload[len(payload) // 2 :]
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.log: list[tuple[str, str | None]] = []
        self.truncate_once: set[str] = set()
        self.ignore_range = False
        self.cut_without_length = 0  # responses still to send cut short, without Content-Length
        self.pause = 0.0  # seconds to stall halfway through each body

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/movielens"

    def serve(self, name: str, content: bytes) -> bytes:
        self.files[f"/movielens/{name}.zip"] = content
        return content


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(variable, "127.0.0.1,localhost")


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _Server()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _load(server: _Server, home: Path, name: str, **kwargs):
    content = server.serve(name, release_archive(name))
    kwargs.setdefault("checksum", md5(content))
    return load_movielens(name, data_home=home, base_url=server.url, **kwargs)


def _positive_pairs(data) -> set[tuple[int, int]]:
    pos = data.positives.tocoo()
    return set(zip(data.user_ids[pos.row].tolist(), data.item_ids[pos.col].tolist(), strict=True))


def _rows(name: str) -> list[tuple]:
    """Rows in the archive of ``name`` (half stars exist from ml-10m on)."""
    return RATINGS if name in ("ml-100k", "ml-1m") else RATINGS + HALF_STARS


# --------------------------------------------------------------------------
# download and parse
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_download_and_parse(server: _Server, tmp_path: Path, name: str) -> None:
    data = _load(server, tmp_path, name)
    rows = _rows(name)
    assert data.n_positives == sum(r >= 4 for _, _, r, _ in rows)
    assert data.n_positives + data.n_negatives == len(rows)
    assert data.n_users == (4 if name in ("ml-100k", "ml-1m") else 3)  # users table adds user 4
    assert list(data.item_ids) == [10, 20, 30, 40, 50]
    assert list(data.item_titles) == [title for _, title, _ in MOVIES]
    assert (1, 10) in _positive_pairs(data) and (1, 20) not in _positive_pairs(data)
    # timestamps follow the canonical (user, item) order of the positives
    expected = sorted((u, i, t) for u, i, r, t in _rows(name) if r >= 4)
    assert list(data.timestamps) == [t for _, _, t in expected]
    # cache: extracted folder kept, archive and partial download gone
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert len(server.log) == 1
    load_movielens(name, data_home=tmp_path, base_url=server.url, download=False)
    assert len(server.log) == 1  # second call is served from the cache


@pytest.mark.parametrize("name", ["ml-100k", "ml-1m", "ml-20m"])
def test_genre_features(server: _Server, tmp_path: Path, name: str) -> None:
    data = _load(server, tmp_path, name)
    names = list(data.item_feature_names)
    assert "genre=Comedy" in names and "genre=Sci-Fi" in names
    assert "genre=(no genres listed)" not in names
    if name == "ml-100k":
        assert len(names) == 19  # one column per u.item genre flag
    else:
        assert set(names) == {f"genre={g}" for g in "Action Animation Comedy Crime Drama Sci-Fi Thriller".split()}
    matrix = data.item_features.toarray()
    row = matrix[list(data.item_ids).index(40)]
    assert {names[j] for j in np.flatnonzero(row)} == {"genre=Sci-Fi", "genre=Action"}
    assert matrix[list(data.item_ids).index(50)].sum() == 0


@pytest.mark.parametrize("name", ["ml-100k", "ml-1m"])
def test_user_demographics(server: _Server, tmp_path: Path, name: str) -> None:
    data = _load(server, tmp_path, name)
    names = list(data.user_feature_names)
    for expected in ("age=18-24", "age=50-55", "age=Under 18", "gender=F", "gender=M", "occupation=writer"):
        assert expected in names
    dense = data.user_features.toarray()
    assert (dense.sum(axis=1) == 3).all()  # one age group, one gender, one occupation
    user2 = {names[j] for j in np.flatnonzero(dense[list(data.user_ids).index(2)])}
    assert user2 == {"age=50-55", "gender=F", "occupation=writer"}
    assert data.user_features.shape[0] == 4


def test_no_user_table_gives_no_user_features(server: _Server, tmp_path: Path) -> None:
    data = _load(server, tmp_path, "ml-25m")
    assert data.user_features is None and data.user_feature_names is None


@pytest.mark.parametrize("name", ["ml-10m", "ml-latest-small"])
def test_tag_features(server: _Server, tmp_path: Path, name: str) -> None:
    data = _load(server, tmp_path, name, item_features="genres+tags", min_tag_items=1)
    names = list(data.item_feature_names)
    assert {"tag=funny", "tag=dark"} <= set(names)
    assert sum(n.startswith("tag=") for n in names) == 2  # "Funny", "funny " merged
    column = data.item_features[:, names.index("tag=funny")].toarray().ravel()
    assert [int(i) for i in data.item_ids[column > 0]] == [10, 40]
    strict = load_movielens(name, data_home=tmp_path, item_features="tags", min_tag_items=2)
    assert list(strict.item_feature_names) == ["tag=funny"]


def test_threshold_rule(server: _Server, tmp_path: Path) -> None:
    ratings = [r for _, _, r, _ in RATINGS + HALF_STARS]
    for threshold in (4.0, 3.5, 1.0, 5.0):
        data = _load(server, tmp_path, "ml-20m", threshold=threshold)
        assert data.n_positives == sum(r >= threshold for r in ratings)
        assert data.n_negatives == sum(r < threshold for r in ratings)
    everything = _load(server, tmp_path, "ml-20m", threshold=None)
    assert (everything.n_positives, everything.n_negatives) == (len(ratings), 0)


def test_as_frame(server: _Server, tmp_path: Path) -> None:
    frames = _load(server, tmp_path, "ml-1m", as_frame=True)
    assert isinstance(frames, MovieLensFrames)
    assert list(frames.ratings.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert len(frames.ratings) == len(RATINGS)
    assert frames.items.loc[frames.items["item_id"] == 10, "title"].item() == "Café Story (1995)"
    assert frames.users.loc[frames.users["user_id"] == 2, "occupation"].item() == "writer"
    assert frames.tags is None


def test_extracted_folder_used_without_archive(tmp_path: Path, closed_port: int) -> None:
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    for file, content in _files_100k().items():
        (folder / file).write_bytes(content)
    data = load_movielens(data_home=tmp_path, base_url=f"http://127.0.0.1:{closed_port}")
    assert data.n_positives == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ml-100k"]  # nothing written


def test_env_variable_sets_cache(server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKBPR_DATA", str(tmp_path / "env-home"))
    content = server.serve("ml-1m", release_archive("ml-1m"))
    load_movielens("ml-1m", base_url=server.url, checksum=md5(content))
    assert (tmp_path / "env-home" / "ml-1m" / "ratings.dat").is_file()


def test_archive_placed_by_hand(tmp_path: Path) -> None:
    (tmp_path / "ml-latest-small.zip").write_bytes(release_archive("ml-latest-small"))
    data = load_movielens("ml-latest-small", data_home=tmp_path, download=False)
    assert data.n_positives == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ml-latest-small"]


# --------------------------------------------------------------------------
# integrity
# --------------------------------------------------------------------------
def test_checksum_mismatch_leaves_nothing(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(OSError, match="checksum mismatch"):
        _load(server, tmp_path, "ml-1m", checksum="md5:" + "0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_known_checksum_table_is_applied(server: _Server, tmp_path: Path) -> None:
    # the made-up archive cannot match the published GroupLens digest
    server.serve("ml-100k", release_archive("ml-100k"))
    with pytest.raises(OSError, match="0e33842e24a9c977be4e0107933c0723"):
        load_movielens("ml-100k", data_home=tmp_path, base_url=server.url)
    assert list(tmp_path.iterdir()) == []


def test_sha256_checksum(server: _Server, tmp_path: Path) -> None:
    content = server.serve("ml-25m", release_archive("ml-25m"))
    digest = hashlib.sha256(content).hexdigest()
    data = load_movielens("ml-25m", data_home=tmp_path, base_url=server.url, checksum=digest)
    assert data.n_positives == 6


def test_resume_after_broken_download(server: _Server, tmp_path: Path) -> None:
    content = server.serve("ml-20m", release_archive("ml-20m"))
    server.truncate_once.add("/movielens/ml-20m.zip")
    data = load_movielens("ml-20m", data_home=tmp_path, base_url=server.url, checksum=md5(content))
    assert data.n_positives == 6
    assert server.log == [("/movielens/ml-20m.zip", None), ("/movielens/ml-20m.zip", f"bytes={len(content) // 2}-")]


def test_resume_partial_file_from_earlier_run(server: _Server, tmp_path: Path) -> None:
    content = server.serve("ml-1m", release_archive("ml-1m"))
    (tmp_path / "ml-1m.zip.part").write_bytes(content[:100])
    data = load_movielens("ml-1m", data_home=tmp_path, base_url=server.url, checksum=md5(content))
    assert data.n_positives == 5
    assert server.log == [("/movielens/ml-1m.zip", "bytes=100-")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ml-1m"]


def test_server_without_range_support_restarts(server: _Server, tmp_path: Path) -> None:
    server.ignore_range = True
    content = server.serve("ml-1m", release_archive("ml-1m"))
    (tmp_path / "ml-1m.zip.part").write_bytes(b"stale bytes that are not a prefix")
    data = load_movielens("ml-1m", data_home=tmp_path, base_url=server.url, checksum=md5(content))
    assert data.n_positives == 5


def test_complete_partial_file_is_finished(server: _Server, tmp_path: Path) -> None:
    content = server.serve("ml-10m", release_archive("ml-10m"))
    (tmp_path / "ml-10m.zip.part").write_bytes(content)
    data = load_movielens("ml-10m", data_home=tmp_path, base_url=server.url, checksum=md5(content))
    assert data.n_positives == 6
    assert server.log == [("/movielens/ml-10m.zip", f"bytes={len(content)}-")]  # answered 416


def test_tags_without_tag_file(server: _Server, tmp_path: Path) -> None:
    data = _load(server, tmp_path, "ml-1m", item_features="tags")
    assert data.item_features is None


def test_corrupt_partial_file_is_deleted(server: _Server, tmp_path: Path) -> None:
    content = server.serve("ml-1m", release_archive("ml-1m"))
    (tmp_path / "ml-1m.zip.part").write_bytes(b"x" * 100)
    with pytest.raises(OSError, match="checksum mismatch"):
        load_movielens("ml-1m", data_home=tmp_path, base_url=server.url, checksum=md5(content))
    assert list(tmp_path.iterdir()) == []
    # the next call starts over and succeeds
    assert load_movielens("ml-1m", data_home=tmp_path, base_url=server.url, checksum=md5(content)).n_positives == 5


def test_download_cut_short_without_length_is_fetched_again(server: _Server, tmp_path: Path) -> None:
    # ml-latest-small has no published checksum: only the zip structure shows the body was cut
    server.serve("ml-latest-small", release_archive("ml-latest-small"))
    server.cut_without_length = 1
    data = load_movielens("ml-latest-small", data_home=tmp_path, base_url=server.url)
    assert data.n_positives == 6
    assert [path for path, _ in server.log] == ["/movielens/ml-latest-small.zip"] * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ml-latest-small"]


def test_download_always_cut_short_fails_naming_the_file_and_leaves_nothing(server: _Server, tmp_path: Path) -> None:
    server.serve("ml-latest-small", release_archive("ml-latest-small"))
    server.cut_without_length = 10
    with pytest.raises(OSError, match="not a valid zip archive") as info:
        load_movielens("ml-latest-small", data_home=tmp_path, base_url=server.url)
    assert str(tmp_path / "ml-latest-small.zip") in str(info.value)
    assert f"{server.url}/ml-latest-small.zip" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no archive, no partial file
    server.cut_without_length = 0  # the next call starts over and succeeds
    assert load_movielens("ml-latest-small", data_home=tmp_path, base_url=server.url).n_positives == 6


@pytest.mark.parametrize("corrupt", ["truncated", "garbage", "bad crc"])
@pytest.mark.parametrize("download", [True, False])
def test_corrupt_cached_archive_names_the_file(tmp_path: Path, closed_port: int, corrupt: str, download: bool) -> None:
    content = release_archive("ml-latest-small")
    if corrupt == "truncated":
        content = content[: len(content) // 2]
    elif corrupt == "garbage":
        content = b"<html>502 Bad Gateway</html>"
    else:  # stored members, one byte of ratings.csv flipped: only the CRC shows it
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as bundle:
            for file, data in _files_csv().items():
                bundle.writestr(f"ml-latest-small/{file}", data)
        content = bytearray(buffer.getvalue())
        at = bytes(content).index(b"userId,movieId")
        content[at] ^= 0x20
        content = bytes(content)
    archive = tmp_path / "ml-latest-small.zip"
    archive.write_bytes(content)
    with pytest.raises(OSError, match="not a valid zip archive") as info:
        load_movielens(
            "ml-latest-small", data_home=tmp_path, base_url=f"http://127.0.0.1:{closed_port}", download=download
        )
    assert str(archive) in str(info.value) and "delete it" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ml-latest-small.zip"]  # nothing extracted


_RACER = """
import sys, time
from pathlib import Path
from skbpr.datasets import load_movielens
home, url, ready, go = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
ready.touch()
while not go.exists():
    time.sleep(0.01)
data = load_movielens("ml-latest-small", data_home=home, base_url=url)
print(data.n_positives)
"""


def test_processes_loading_into_the_same_data_home_at_once(server: _Server, tmp_path: Path) -> None:
    server.serve("ml-latest-small", release_archive("ml-latest-small"))
    server.pause = 0.5  # every download is still running when the others start
    home, sync = tmp_path / "home", tmp_path / "sync"
    sync.mkdir()
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, str(home), server.url, str(sync / f"ready{i}"), str(sync / "go")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(3)
    ]
    try:
        deadline = time.monotonic() + 240
        while len(list(sync.glob("ready*"))) < len(procs) and time.monotonic() < deadline:
            time.sleep(0.05)
        (sync / "go").touch()
        results = [proc.communicate(timeout=240) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert out.split() == ["6"]
    assert len(server.log) == len(procs)  # they did download at the same time
    assert sorted(p.name for p in home.iterdir()) == ["ml-latest-small"]  # no archive or partial file left


def _hostile(member: zipfile.ZipInfo | str, content: bytes = b"owned") -> bytes:
    files = {f"ml-100k/{file}": data for file, data in _files_100k().items()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
        bundle.writestr(member, content)
    return buffer.getvalue()


def _symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (0o120777 << 16) | 0x10
    info.create_system = 3
    return info


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("ml-100k/../../escaped.txt", r"contains '\.\.'"),
        ("../escaped.txt", r"contains '\.\.'"),
        ("/tmp/escaped-absolute.txt", "absolute path"),
        (_symlink("ml-100k/link", "/etc/passwd"), "symbolic link"),
    ],
)
def test_hostile_members_rejected(server: _Server, tmp_path: Path, member, reason: str) -> None:
    home = tmp_path / "home"
    content = server.serve("ml-100k", _hostile(member, b"/etc/passwd"))
    with pytest.raises(ValueError, match=reason + ".*; the download was deleted"):
        load_movielens(data_home=home, base_url=server.url, checksum=md5(content))
    assert not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/escaped-absolute.txt").exists()
    assert list(home.iterdir()) == []  # nothing extracted, and the refused archive is not kept to be refused again
    # so a good mirror serves the next call
    good = server.serve("ml-100k", release_archive("ml-100k"))
    assert load_movielens(data_home=home, base_url=server.url, checksum=md5(good)).n_positives > 0
    assert [p.name for p in home.iterdir()] == ["ml-100k"]


def _bomb(name: str, size: int) -> bytes:
    """A release archive with one more member of ``size`` zero bytes, which deflate packs about 1000-fold."""
    folder = FOLDERS.get(name, name)
    files = {f"{folder}/{file}": content for file, content in release_files(name).items()}
    return _zip({**files, f"{folder}/padding.bin": bytes(size)})


def test_zip_bomb_is_refused_before_extraction_and_leaves_nothing(server: _Server, tmp_path: Path) -> None:
    home = tmp_path / "home"
    content = server.serve("ml-100k", _bomb("ml-100k", 20 << 20))
    assert len(content) < 100_000  # 20 MiB of members in a few dozen kilobytes
    message = (
        r"refusing to extract the download of http://127\.0\.0\.1:\d+/movielens/ml-100k\.zip for "
        rf"{re.escape(str(home / 'ml-100k.zip'))}: member 'ml-100k/padding\.bin' expands \d+-fold "
        r"\(\d+ to 20971520 bytes\), more than the limit of 100-fold .*; the download was deleted"
    )
    with pytest.raises(ValueError, match=message):
        load_movielens(data_home=home, base_url=server.url, checksum=md5(content))
    assert list(home.iterdir()) == []  # no archive, no partial file, nothing extracted
    good = server.serve("ml-100k", release_archive("ml-100k"))  # a good mirror then serves the next call
    assert load_movielens(data_home=home, base_url=server.url, checksum=md5(good)).n_positives > 0
    assert [p.name for p in home.iterdir()] == ["ml-100k"]


def test_release_size_limit_bounds_download_cache_and_extraction(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from skbpr.data.datasets import cache

    content = release_archive("ml-100k")
    size = sum(info.file_size for info in zipfile.ZipFile(io.BytesIO(content)).infolist())
    limit = size - 1
    monkeypatch.setitem(cache.RELEASES, "ml-100k", dataclasses.replace(cache.RELEASES["ml-100k"], max_bytes=limit))
    home = tmp_path / "home"
    server.serve("ml-100k", content)
    with pytest.raises(ValueError, match=rf"expand to {size} bytes, more than the limit of {limit} bytes .*deleted"):
        load_movielens(data_home=home, base_url=server.url, checksum=md5(content))
    assert list(home.iterdir()) == []
    # an archive placed by hand is not deleted: the message says which file to delete
    (home / "ml-100k.zip").write_bytes(content)
    cached = re.escape(str(home / "ml-100k.zip"))
    with pytest.raises(ValueError, match=rf"refusing to extract {cached}: .* {limit} bytes.*; delete it and call"):
        load_movielens(data_home=home, base_url=server.url, checksum=md5(content))
    assert [p.name for p in home.iterdir()] == ["ml-100k.zip"]
    # what the archive's directory announces is counted again as it is written
    (home / "ml-100k.zip").unlink()
    monkeypatch.setattr(cache, "_expansion_problem", lambda path, max_bytes: None)
    with pytest.raises(ValueError, match=rf"expand to more than the limit of {limit} bytes.*the download was deleted"):
        load_movielens(data_home=home, base_url=server.url, checksum=md5(content))
    assert list(home.iterdir()) == []


# --------------------------------------------------------------------------
# offline and arguments
# --------------------------------------------------------------------------
def test_offline_message_names_the_files(tmp_path: Path) -> None:
    with pytest.raises(OSError) as info:
        load_movielens("ml-1m", data_home=tmp_path, download=False)
    message = str(info.value)
    assert "download=False" in message
    assert str(tmp_path / "ml-1m" / "ratings.dat") in message
    assert str(tmp_path / "ml-1m.zip") in message
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in message
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server(tmp_path: Path, closed_port: int) -> None:
    base_url = f"http://127.0.0.1:{closed_port}/mirror"
    with pytest.raises(OSError, match="downloading failed") as info:
        load_movielens("ml-20m", data_home=tmp_path, base_url=base_url)
    assert f"{base_url}/ml-20m.zip" in str(info.value)
    assert str(tmp_path / "ml-20m" / "ratings.csv") in str(info.value)


def test_missing_file_on_server(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(OSError, match="404"):
        load_movielens("ml-25m", data_home=tmp_path, base_url=server.url)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"name": "ml-5m"}, "name"),
        ({"threshold": "4"}, "threshold"),
        ({"threshold": float("nan")}, "threshold"),
        ({"item_features": "genre"}, "item_features"),
        ({"user_features": "yes"}, "user_features"),
        ({"download": 1}, "download"),
        ({"checksum": "md5:1234"}, "checksum"),
        ({"checksum": "crc32:" + "0" * 8}, "checksum"),
        ({"min_tag_items": 0}, "min_tag_items"),
        ({"base_url": ""}, "base_url"),
    ],
)
def test_invalid_arguments_fail_before_any_work(server: _Server, tmp_path: Path, kwargs: dict, argument: str) -> None:
    kwargs = {"data_home": tmp_path / "home", "base_url": server.url, **kwargs}
    with pytest.raises(ValueError, match=argument):
        load_movielens(**kwargs)
    assert server.log == []
    assert not (tmp_path / "home").exists()


# --------------------------------------------------------------------------
# the real MovieLens 100K, when a copy is around
# --------------------------------------------------------------------------
@pytest.mark.skipif(not (REAL_DATA / "ml-100k" / "u.data").is_file(), reason=f"no MovieLens 100K copy in {REAL_DATA}")
def test_real_movielens_100k() -> None:
    data = load_movielens("ml-100k", data_home=REAL_DATA, download=False)
    assert data.n_positives + data.n_negatives == 100_000
    assert (data.n_users, data.n_items) == (943, 1682)
    assert data.item_features.shape == (1682, 19)
    assert data.user_features.shape[0] == 943
    assert (data.user_features.sum(axis=1) == 3).all()
    assert data.timestamps.shape == (data.n_positives,)
    assert 0.5 < data.n_positives / 100_000 < 0.6  # ratings of 4 and 5 stars
