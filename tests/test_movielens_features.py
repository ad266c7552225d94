"""The richer MovieLens side features: release year and decade, title words, zip region.

Every release is a handful of made-up rows written in its own file layout
into a temporary folder and read without a download.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skbpr.datasets import load_movielens

GENRES_100K = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip
# (item, title, release date, genres): item 40 has no year anywhere, item 50 only in its date
MOVIES_100K = [
    (10, "Café Story (1995)", "01-Jan-1995", "Animation|Comedy"),
    (20, "Heist, The (1996)", "12-Mar-1996", "Crime"),
    (30, "Story of the Heist (1987)", "01-Jan-1987", "Crime|Drama"),
    (40, "unknown", "", "unknown"),
    (50, "Old Film", "01-Jan-1939", "Drama"),
]
# (user, age, gender, occupation, zip code)
USERS_100K = [
    (1, 24, "M", "technician", "85711"),
    (2, 53, "F", "other", "T8H1N"),
    (3, 23, "M", "writer", "01002"),
]
RATINGS_100K = [(1, 10, 5, 1), (1, 20, 4, 2), (2, 30, 5, 3), (3, 50, 4, 4), (3, 40, 2, 5)]


def _write_100k(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in RATINGS_100K))
    lines = []
    for item, title, date, genres in MOVIES_100K:
        flags = "|".join("1" if g in genres.split("|") else "0" for g in GENRES_100K)
        lines.append(f"{item}|{title}|{date}||http://example.invalid/{item}|{flags}\n")
    (folder / "u.item").write_bytes("".join(lines).encode("latin-1"))
    (folder / "u.user").write_text("".join(f"{u}|{a}|{g}|{o}|{z}\n" for u, a, g, o, z in USERS_100K))
    (folder / "u.genre").write_text("".join(f"{g}|{k}\n" for k, g in enumerate(GENRES_100K)) + "\n")


@pytest.fixture
def home_100k(tmp_path: Path) -> Path:
    _write_100k(tmp_path / "ml-100k")
    return tmp_path


def _load_100k(home: Path, **kwargs):
    return load_movielens("ml-100k", data_home=home, download=False, **kwargs)


def _row_features(data, raw_id: int, side: str = "item") -> set[str]:
    ids = data.item_ids if side == "item" else data.user_ids
    matrix = data.item_features if side == "item" else data.user_features
    names = data.item_feature_names if side == "item" else data.user_feature_names
    row = matrix[int(np.flatnonzero(ids == raw_id)[0])]
    assert set(row.data.tolist()) <= {1.0}
    return {names[j] for j in row.indices}


def test_defaults_are_unchanged(home_100k: Path) -> None:
    data = _load_100k(home_100k)
    assert data.item_feature_names.tolist() == [f"genre={g}" for g in GENRES_100K]
    assert data.user_feature_names.tolist() == [
        "age=18-24", "age=50-55", "gender=F", "gender=M", "occupation=other", "occupation=technician",
        "occupation=writer",
    ]  # fmt: skip
    assert _row_features(data, 30) == {"genre=Crime", "genre=Drama"}


def test_year_decade_and_title_words(home_100k: Path) -> None:
    data = _load_100k(home_100k, item_features="genres+year+decade+title", min_word_items=2)
    names = data.item_feature_names.tolist()
    assert names[:19] == [f"genre={g}" for g in GENRES_100K]
    assert names[19:] == [
        "year=1939", "year=1987", "year=1995", "year=1996",
        "decade=1930s", "decade=1980s", "decade=1990s",
        "title=heist", "title=story", "title=the",
    ]  # fmt: skip
    assert data.item_features.shape == (5, 29)
    assert _row_features(data, 10) == {"genre=Animation", "genre=Comedy", "year=1995", "decade=1990s", "title=story"}
    assert _row_features(data, 20) == {"genre=Crime", "year=1996", "decade=1990s", "title=heist", "title=the"}
    # "the" twice in one title is one feature; the year comes from the title, not from the date
    assert _row_features(data, 30) == {
        "genre=Crime", "genre=Drama", "year=1987", "decade=1980s", "title=heist", "title=story", "title=the",
    }  # fmt: skip
    assert _row_features(data, 40) == {"genre=unknown"}  # no year, and "unknown" is a word of one title
    assert _row_features(data, 50) == {"genre=Drama", "year=1939", "decade=1930s"}  # year from the release date


def test_blocks_follow_the_order_given_and_word_threshold(home_100k: Path) -> None:
    data = _load_100k(home_100k, item_features="title+decade", min_word_items=1)
    names = data.item_feature_names.tolist()
    words = ["café", "film", "heist", "of", "old", "story", "the", "unknown"]
    assert names == [f"title={w}" for w in words] + ["decade=1930s", "decade=1980s", "decade=1990s"]
    assert _row_features(data, 50) == {"title=old", "title=film", "decade=1930s"}
    strict = _load_100k(home_100k, item_features="title", min_word_items=3)
    assert strict.item_features is None  # no word is in three titles


def test_zip_region(home_100k: Path) -> None:
    data = _load_100k(home_100k, user_features="age+gender+occupation+zip")
    names = data.user_feature_names.tolist()
    assert names[-3:] == ["zip=0", "zip=8", "zip=other"]
    assert _row_features(data, 1, "user") == {"age=18-24", "gender=M", "occupation=technician", "zip=8"}
    assert _row_features(data, 2, "user") == {"age=50-55", "gender=F", "occupation=other", "zip=other"}
    only = _load_100k(home_100k, user_features="zip")
    assert only.user_feature_names.tolist() == ["zip=0", "zip=8", "zip=other"]
    assert only.user_features.toarray().tolist() == [[0, 1, 0], [0, 0, 1], [1, 0, 0]]
    assert _load_100k(home_100k, user_features=False).user_features is None
    assert _load_100k(home_100k, user_features=True).user_feature_names.tolist() == names[:-3]


def test_ml_1m_layout(tmp_path: Path) -> None:
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::1::5::10\n2::2::4::11\n")
    (folder / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation|Children's\n2::Toy Soldiers (1991)::Action\n".encode("latin-1")
    )
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::98107-2117\n")
    data = load_movielens(
        "ml-1m", data_home=tmp_path, download=False, item_features="decade+title", user_features="zip+gender",
        min_word_items=2,
    )  # fmt: skip
    assert data.item_feature_names.tolist() == ["decade=1990s", "title=toy"]
    assert data.item_features.toarray().tolist() == [[1, 1], [1, 1]]
    assert data.user_feature_names.tolist() == ["zip=4", "zip=9", "gender=F", "gender=M"]
    assert data.user_features.toarray().tolist() == [[1, 0, 1, 0], [0, 1, 0, 1]]


def test_csv_layout_year_spans_and_missing_years(tmp_path: Path) -> None:
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,5,1\n1,2,4,2\n1,3,4,3\n")
    (folder / "movies.csv").write_text(
        'movieId,title,genres\n1,"Band of Brothers (2001\u20132001)",War\n2,Heat (1995) ,Action\n3,Cosmos,Documentary\n'
    )
    data = load_movielens("ml-latest-small", data_home=tmp_path, download=False, item_features="year+title")
    names = data.item_feature_names.tolist()
    assert names == ["year=1995", "year=2001"]  # no title word is in five titles
    assert data.item_features.toarray().tolist() == [[0, 1], [1, 0], [0, 0]]
    words = load_movielens(
        "ml-latest-small", data_home=tmp_path, download=False, item_features="title", min_word_items=1
    )
    assert words.item_feature_names.tolist() == [
        "title=band",
        "title=brothers",
        "title=cosmos",
        "title=heat",
        "title=of",
    ]


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"item_features": "genres+genres"}, "item_features"),
        ({"item_features": "genres+years"}, "item_features"),
        ({"item_features": ""}, "item_features"),
        ({"item_features": True}, "item_features"),
        ({"user_features": "age+zip+age"}, "user_features"),
        ({"user_features": "zipcode"}, "user_features"),
        ({"user_features": 1}, "user_features"),
        ({"min_word_items": 0}, "min_word_items"),
        ({"min_word_items": 2.0}, "min_word_items"),
    ],
)
def test_invalid_feature_specs_name_the_argument(home_100k: Path, kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument) as error:
        _load_100k(home_100k, **kwargs)
    assert repr(next(iter(kwargs.values()))) in str(error.value)
