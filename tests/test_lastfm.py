"""The Last.fm HetRec loader on small files written in the release's format."""

from __future__ import annotations

import numpy as np
import pytest

from skbpr.datasets import load_lastfm


def _write(folder, *, header: bool = False, crlf: bool = True, tags: bool = False) -> None:
    folder.mkdir(parents=True)
    end = "\r\n" if crlf else "\n"
    listens = [(2, 51, 13883), (2, 52, 11690), (3, 52, 5), (7, 90, 1), (7, 51, 2)]
    lines = (["userID\tartistID\tweight"] if header else []) + ["\t".join(map(str, row)) for row in listens]
    (folder / "user_artists.dat").write_text(end.join(lines) + end)
    friends = ["userID\tfriendID", "2\t3", "3\t2", "2\t7", "7\t2", "99\t2"]
    (folder / "user_friends.dat").write_text(end.join(friends) + end)
    artists = [
        "id\tname\turl\tpictureURL",
        "51\tDuran Duran\thttp://a\thttp://b",
        "52\tMorcheeba\tu\tp",
        "90\tBjörk\tu\tp",
        "95\tNever Played\tu\tp",
    ]
    (folder / "artists.dat").write_text(end.join(artists) + end, encoding="utf-8")
    if tags:
        (folder / "tags.dat").write_text("tagID\ttagValue\n1\tPop\n2\ttrip-hop\n3\tpop \n")
        tagged = [
            "userID\tartistID\ttagID\tday\tmonth\tyear",
            "2\t51\t1\t1\t1\t2008",
            "3\t52\t1\t1\t1\t2008",
            "2\t52\t2\t1\t1\t2008",
            "7\t90\t3\t1\t1\t2008",
        ]
        (folder / "user_taggedartists.dat").write_text("\n".join(tagged) + "\n")


@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("crlf", [False, True])
def test_reads_listens_as_weighted_positives(tmp_path, header, crlf):
    _write(tmp_path / "hetrec2011-lastfm-2k", header=header, crlf=crlf)
    data = load_lastfm(data_home=tmp_path)
    assert data.user_ids.tolist() == [2, 3, 7]
    assert data.item_ids.tolist() == [51, 52, 90, 95]  # artists without listens keep their row
    pairs = {
        (int(data.user_ids[u]), int(data.item_ids[i])): float(w)
        for u, i, w in zip(data.pos_users, data.pos_items, data.pos_values, strict=True)
    }
    assert pairs == {(2, 51): 13883.0, (2, 52): 11690.0, (3, 52): 5.0, (7, 90): 1.0, (7, 51): 2.0}
    assert data.negatives is None
    assert data.item_titles.tolist() == ["Duran Duran", "Morcheeba", "Björk", "Never Played"]


def test_friends_become_user_features(tmp_path):
    _write(tmp_path / "hetrec2011-lastfm-2k")
    data = load_lastfm(data_home=tmp_path)
    names = data.user_feature_names.tolist()
    assert names == ["friend=2", "friend=3", "friend=7"]  # user 99 has no listens: dropped as a row
    dense = data.user_features.toarray()
    np.testing.assert_array_equal(dense, [[0, 1, 1], [1, 0, 0], [1, 0, 0]])
    assert load_lastfm(data_home=tmp_path, user_features=False).user_features is None
    assert data.item_features is None  # no tag files


def test_tags_become_item_features_when_present(tmp_path):
    _write(tmp_path / "hetrec2011-lastfm-2k", tags=True)
    data = load_lastfm(data_home=tmp_path, min_tag_items=2)
    assert data.item_feature_names.tolist() == ["tag=pop"]  # "Pop" and "pop " merge; trip-hop on one artist
    np.testing.assert_array_equal(data.item_features.toarray().ravel(), [1, 1, 1, 0])
    everything = load_lastfm(data_home=tmp_path, min_tag_items=1)
    assert everything.item_feature_names.tolist() == ["tag=pop", "tag=trip-hop"]


def test_a_fitted_model_ranks_the_loaded_data(tmp_path):
    from skbpr import HybridBPR

    _write(tmp_path / "hetrec2011-lastfm-2k")
    data = load_lastfm(data_home=tmp_path)
    model = HybridBPR(8, epochs=2, random_state=0, user_features_mode="both").fit(data)
    items, scores = model.recommend([0], k=2)
    assert np.isfinite(scores).all() and items.shape == (1, 2)


def test_missing_folder_names_the_path_and_the_download(tmp_path):
    with pytest.raises(OSError, match=r"user_artists.dat not found: extract https://files.grouplens.org"):
        load_lastfm(data_home=tmp_path)


def test_bad_values_are_named(tmp_path):
    folder = tmp_path / "hetrec2011-lastfm-2k"
    _write(folder)
    with pytest.raises(ValueError, match="user_features must be True or False, got 'yes'"):
        load_lastfm(data_home=tmp_path, user_features="yes")
    with pytest.raises(ValueError, match="min_tag_items must be an integer >= 1, got 0"):
        load_lastfm(data_home=tmp_path, min_tag_items=0)
    (folder / "user_artists.dat").write_text("2\t51\t0\n")
    with pytest.raises(ValueError, match="play counts must be > 0, got 0"):
        load_lastfm(data_home=tmp_path)
    (folder / "user_artists.dat").write_text("2\tfifty\t3\n")
    with pytest.raises(ValueError, match="column 'item_id' must hold integers, got 'fifty'"):
        load_lastfm(data_home=tmp_path)
