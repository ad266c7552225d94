"""MovieLens file readers: one per release layout (100k, ``.dat``, ``.csv``) into raw tables."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

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


# release layout (``RELEASES[name].layout``) -> reader of that layout's tables
READERS = {"100k": _read_100k, "dat": _read_dat_release, "csv": _read_csv_release}
