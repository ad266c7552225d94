"""Batch recommendations for every user: pandas, Dask partitions, Spark mapInPandas, ``--all-users``."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from skbpr import HybridBPR, Interactions
from skbpr.cli import main
from skbpr.distributed.batch import BatchRecommender, recommend_frame

K = 5


@pytest.fixture(scope="module")
def fitted():
    """A model fitted on events with string user ids and integer item ids (non-contiguous)."""
    rng = np.random.default_rng(3)
    users = [f"user-{k:03d}" for k in range(90)]
    events = pd.DataFrame({"user_id": rng.choice(users, 1500), "item_id": rng.integers(0, 40, 1500) * 7 + 1000})
    data = Interactions.from_frame(events.drop_duplicates(), user_col="user_id", item_col="item_id")
    model = HybridBPR(8, epochs=3, random_state=0, n_threads=1).fit(data)
    return model, data


def _expected(model, data, users: list[str], exclude_seen: bool = True) -> pd.DataFrame:
    """The reference: one recommend call on the users' indices, mapped to raw ids by hand."""
    index = {u: i for i, u in enumerate(data.user_ids)}
    rows = np.array([index[u] for u in users])
    items, scores = model.recommend(rows, k=K, exclude_seen=exclude_seen)
    return pd.DataFrame(
        {
            "user": np.repeat(np.array(users, dtype=object), K),
            "item": data.item_ids[items.ravel()],
            "score": scores.ravel().astype(np.float64),
            "rank": np.tile(np.arange(1, K + 1, dtype=np.int32), len(users)),
        }
    )


def test_frame_of_users_gives_raw_ids_equal_to_one_recommend_call(fitted):
    model, data = fitted
    users = list(data.user_ids[[5, 0, 77, 5, 31]])  # any order, a repeat
    out = recommend_frame(model, pd.DataFrame({"user": users}), user_ids=data.user_ids, item_ids=data.item_ids, k=K)
    pd.testing.assert_frame_equal(out, _expected(model, data, users))
    assert out["item"].isin(data.item_ids).all() and out["item"].min() >= 1000  # raw ids, not indices
    seen = {(data.user_ids[u], data.item_ids[i]) for u, i in zip(*model.train_positives_.nonzero(), strict=True)}
    assert not any((u, i) in seen for u, i in zip(out["user"], out["item"], strict=True))


def test_include_seen_and_other_column_name(fitted):
    model, data = fitted
    users = list(data.user_ids[:4])
    rec = BatchRecommender(model, data.user_ids, data.item_ids, k=K, user_col="customer", exclude_seen=False)
    pd.testing.assert_frame_equal(
        rec(pd.DataFrame({"customer": users, "other": 1})), _expected(model, data, users, exclude_seen=False)
    )


def test_no_python_loop_per_user_one_recommend_call_per_frame(fitted, monkeypatch):
    model, data = fitted
    calls = []
    original = HybridBPR.recommend

    def counting(self, users=None, *args, **kwargs):
        calls.append(len(users))
        return original(self, users, *args, **kwargs)

    monkeypatch.setattr(HybridBPR, "recommend", counting)
    rec = BatchRecommender(model, data.user_ids, data.item_ids, k=K)
    frames = [pd.DataFrame({"user": data.user_ids[i : i + 30]}) for i in range(0, 90, 30)]
    out = list(rec(iter(frames)))  # the mapInPandas form: an iterator in, an iterator out
    assert calls == [30, 30, 30] and [len(f) for f in out] == [30 * K] * 3


def test_empty_frame_gives_the_meta_schema(fitted):
    model, data = fitted
    rec = BatchRecommender(model, data.user_ids, data.item_ids, k=K)
    out = rec(pd.DataFrame({"user": pd.Series([], dtype=object)}))
    assert out.empty and list(out.columns) == ["user", "item", "score", "rank"]
    assert list(out.dtypes) == list(rec.meta.dtypes) == [np.dtype(object), np.dtype(np.int64), np.float64, np.int32]
    assert rec.spark_schema == "user string, item long, score double, rank int"


def test_fewer_candidates_than_k_drop_the_missing_ranks():
    events = pd.DataFrame({"u": ["a", "a", "a", "b"], "i": [1, 2, 3, 1]})
    data = Interactions.from_frame(events, user_col="u", item_col="i")
    with pytest.warns(UserWarning, match="every item as a positive"):
        model = HybridBPR(4, epochs=1, random_state=0, n_threads=1).fit(data)
    frame = pd.DataFrame({"user": ["a", "b"]})
    out = recommend_frame(model, frame, user_ids=data.user_ids, item_ids=data.item_ids, k=3)
    assert out["user"].tolist() == ["b", "b"] and out["rank"].tolist() == [1, 2]  # 'a' has seen every item
    assert set(out["item"]) == {2, 3}


def test_users_without_raw_ids_are_indices(fitted):
    model, _ = fitted
    out = recommend_frame(model, pd.DataFrame({"user": np.array([2, 0], dtype=np.int32)}), k=2)
    items, _ = model.recommend([2, 0], k=2)
    assert out["user"].tolist() == [2, 2, 0, 0] and out["item"].tolist() == items.ravel().tolist()
    with pytest.raises(ValueError, match=r"user must be indices in \[0, 90\), got \[90, -1\]"):
        recommend_frame(model, pd.DataFrame({"user": [1, 90, -1]}))
    with pytest.raises(
        ValueError, match=r"user must be integer user indices \(the model has no raw user ids\), got dtype object"
    ):
        recommend_frame(model, pd.DataFrame({"user": ["1"]}))


def test_unknown_users_and_bad_columns_raise_naming_them(fitted):
    model, data = fitted
    rec = BatchRecommender(model, data.user_ids, data.item_ids, k=K)
    with pytest.raises(
        ValueError, match=r"user must be user ids known to the model .*got 2 unknown id\(s\) such as \['nobody', 'x'\]"
    ):
        rec(pd.DataFrame({"user": ["user-001", "nobody", "x"]}))
    with pytest.raises(
        ValueError, match=r"user_col must be a column of the frame, got 'user' \(the frame has columns \['id'\]\)"
    ):
        rec(pd.DataFrame({"id": ["user-001"]}))
    with pytest.raises(ValueError, match="frame must be a pandas DataFrame with a 'user' column, got list"):
        rec.transform(["user-001"])
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 40\], got 41"):
        BatchRecommender(model, data.user_ids, data.item_ids, k=41)
    with pytest.raises(
        ValueError, match=r"user_ids must be one id per model row \(90\), got an array of shape \(89,\)"
    ):
        BatchRecommender(model, data.user_ids[:-1])
    with pytest.raises(ValueError, match=r"item_ids must be distinct ids, got repeated ones such as \[0.0\]"):
        BatchRecommender(model, data.user_ids, np.zeros(40))
    with pytest.raises(ValueError, match="model must be a fitted HybridBPR, got an unfitted HybridBPR"):
        BatchRecommender(HybridBPR())


def test_dask_dataframe_partitions_equal_one_recommend_call(fitted):
    dd = pytest.importorskip("dask.dataframe")
    import dask

    model, data = fitted
    rec = BatchRecommender(model, data.user_ids, data.item_ids, k=K)
    users = list(data.user_ids)
    frame = dd.from_pandas(pd.DataFrame({"user": users}), npartitions=4)
    with dask.config.set(scheduler="threads", num_workers=2):
        out = frame.map_partitions(rec, meta=rec.meta).compute()
    assert frame.npartitions == 4
    expected = _expected(model, data, users)
    # Dask may store the string column with another string dtype: the values must be equal
    pd.testing.assert_frame_equal(out.reset_index(drop=True), expected, check_dtype=False)
    assert out["item"].dtype == np.int64 and out["rank"].dtype == np.int32


# --------------------------------------------------------------------------
# Spark
# --------------------------------------------------------------------------
def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").exists():
        return str(Path(home, "bin", "java"))
    return shutil.which("java")


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install pyspark)")
    if _java() is None:
        pytest.skip("no JVM: Spark needs Java 17+ (java on PATH or JAVA_HOME)")
    from pyspark.sql import SparkSession

    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYSPARK_PYTHON", sys.executable)  # the executors' Python is this one
        env.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        session = (
            SparkSession.builder.master("local[2]")
            .appName("skbpr-test")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.network.timeout", "60s")
            .getOrCreate()
        )
        try:
            yield session
        finally:
            session.stop()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")
@pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")
def test_spark_map_in_pandas_with_a_broadcast_model_equals_one_recommend_call(fitted, spark):
    model, data = fitted
    rec = BatchRecommender(model, data.user_ids, data.item_ids, k=K)
    shared = spark.sparkContext.broadcast(rec)

    def recommend(frames):
        return shared.value(frames)

    users = list(data.user_ids)
    frame = spark.createDataFrame(pd.DataFrame({"user": users})).repartition(3)
    out = frame.mapInPandas(recommend, rec.spark_schema).toPandas()
    expected = _expected(model, data, users)
    key = ["user", "rank"]
    got = out.sort_values(key).reset_index(drop=True)
    want = expected.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[["user", "item", "rank"]], want[["user", "item", "rank"]], check_dtype=False)
    np.testing.assert_allclose(got["score"], want["score"], rtol=1e-6)
    # the driver and the JVM listen on the loopback interface only
    assert spark.conf.get("spark.driver.host") == "127.0.0.1"
    port = int(spark.conf.get("spark.driver.port"))
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


# --------------------------------------------------------------------------
# skbpr recommend --all-users
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    rng = np.random.default_rng(5)
    events = pd.DataFrame({"who": [f"u{k:02d}" for k in rng.integers(0, 50, 600)], "what": rng.integers(0, 25, 600)})
    events.drop_duplicates().to_csv(folder / "events.csv", index=False)
    config = {
        "model": {"n_components": 8},
        "training": {"epochs": 2, "random_state": 0, "n_threads": 1},
        "data": {"source": "file", "path": "events.csv", "user_col": "who", "item_col": "what"},
        "mlflow": {"enabled": False},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    path = folder / "model.joblib"
    assert main(["fit", "--config", str(folder / "config.yaml"), "--save", str(path)]) == 0
    return path


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_all_users_written_equal_the_batch_function(saved_model, tmp_path, capsys, suffix, monkeypatch):
    from skbpr.cli import recommend

    monkeypatch.setattr(recommend, "CHUNK_USERS", 16)  # several chunks written one after the other
    target = tmp_path / "out" / f"recs{suffix}"
    assert main(["recommend", "--model", str(saved_model), "--all-users", "--k", "3", "--output", str(target)]) == 0
    assert "recommendations for all 50 users written" in capsys.readouterr().out
    got = pd.read_parquet(target) if suffix == ".parquet" else pd.read_csv(target, dtype={"user": object})
    rec = BatchRecommender.from_file(str(saved_model), k=3)
    want = rec(pd.DataFrame({"user": rec.user_ids}))
    assert list(got.columns) == ["user", "item", "score", "rank"] and len(got) == 150
    pd.testing.assert_frame_equal(got[["user", "item", "rank"]], want[["user", "item", "rank"]], check_dtype=False)
    np.testing.assert_allclose(got["score"], want["score"], rtol=1e-6)
    assert not list(target.parent.glob(".*.part"))  # written beside and renamed


def test_all_users_command_line_errors(saved_model, tmp_path, capsys):
    cases = [
        (["--all-users"], "--all-users: expected --output PATH"),
        (["--all-users", "--users", "u01", "--output", str(tmp_path / "r.csv")], "expected exactly one of them"),
        ([], "--users / --all-users: expected exactly one of them"),
        (["--all-users", "--output", str(tmp_path / "r.txt")], "expected a file name ending in .csv"),
    ]
    for extra, message in cases:
        assert main(["recommend", "--model", str(saved_model), *extra]) == 2
        assert message in capsys.readouterr().err
