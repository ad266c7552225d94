"""The ``skbpr`` command line and its YAML configuration, run end to end on tiny data."""

from __future__ import annotations

import json
import os
import pickle
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from skbpr.cli import load_model, main
from skbpr.config import DEFAULT_CONFIG, ConfigError, load_config, validate_config

TINY = {
    "model": {"n_components": 8},
    "training": {"epochs": 2, "batch_size": 256, "random_state": 0},
    "data": {"source": "synthetic", "n_users": 60, "n_items": 30, "n_interactions": 300, "random_state": 0},
    "mlflow": {"enabled": False},
    "sweep": {"training.loss": ["bpr", "warp"], "model.n_components": [4, 8], "cv": 2},
}


def _write(tmp_path: Path, config: dict, name: str = "config.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return str(path)


def _merge(base: dict, **sections: dict) -> dict:
    out = {k: dict(v) for k, v in base.items()}
    for section, values in sections.items():
        out.setdefault(section, {}).update(values)
    return out


def _table(text: str, label: str) -> list[float]:
    """The numbers of the table row starting with ``label``."""
    for line in text.splitlines():
        if line.startswith(label + " ") or line.startswith(label + "  "):
            return [float(x) for x in re.findall(r"\d+\.\d+", line)]
    raise AssertionError(f"no row {label!r} in:\n{text}")


@pytest.fixture
def tiny(tmp_path):
    return _write(tmp_path, TINY)


# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------
def test_default_config_is_the_quickstart_data():
    config = load_config(None)
    data = config["data"]
    assert (data["source"], data["n_users"], data["n_items"], data["n_interactions"]) == (
        "synthetic",
        2000,
        500,
        100000,
    )
    assert (data["exposure_signal"], data["popularity_skew"], data["noise"], data["random_state"]) == (
        3.0,
        0.5,
        0.25,
        0,
    )
    params = config.estimator_params()
    assert params["n_components"] == 32 and params["epochs"] == 20
    assert config["mlflow"]["enabled"] is True
    assert yaml.safe_load(DEFAULT_CONFIG)["data"]["n_users"] == 2000


def test_config_maps_keys_to_estimator_params():
    config = validate_config(
        {
            "optimizer": {"name": "adam", "learning_rate": "1e-3", "alpha": 0},
            "training": {"top_k": 5, "patience": 3, "loss": "warp", "backend": "native", "deterministic": False},
            "sweep": {"optimizer.learning_rate": [0.01, 0.1], "scoring": ["recall@5", "auc"]},
        }
    )
    params = config.estimator_params()
    assert params["optimizer"] == "adam"
    assert params["learning_rate"] == pytest.approx(1e-3)  # YAML 1.1 reads 1e-3 as a string
    assert params["alpha"] == 0.0 and isinstance(params["alpha"], float)
    assert params["eval_metric"] == "ndcg@5"
    assert params["patience"] == 3 and params["loss"] == "warp"
    assert params["backend"] == "native" and params["deterministic"] is False
    assert config.param_grid() == {"learning_rate": [0.01, 0.1]}
    assert config.scoring == ("recall@5", "auc")
    # to_dict round-trips
    again = validate_config(config.to_dict())
    assert again.estimator_params() == params and again.grid == config.grid


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"training": {"epoch": 5}}, ["training.epoch", "5", "did you mean 'training.epochs'"]),
        ({"trainig": {"epochs": 5}}, ["trainig", "unknown section"]),
        ({"training": {"epochs": "ten"}}, ["training.epochs", "'ten'", "integer"]),
        ({"training": {"epochs": 2.5}}, ["training.epochs", "2.5"]),
        ({"training": {"loss": "square"}}, ["training.loss", "'square'", "bpr"]),
        ({"optimizer": {"learning_rate": -1}}, ["optimizer.learning_rate", "-1"]),
        ({"training": {"implicit_ratio": 1.5}}, ["training.implicit_ratio", "1.5"]),
        ({"mlflow": {"enabled": "yes please"}}, ["mlflow.enabled", "'yes please'"]),
        ({"data": {"test_size": 1.0}}, ["data.test_size", "1.0"]),
        ({"data": {"n_interactions": 10**6}}, ["data.n_interactions", "1000000"]),
        ({"data": {"source": "file", "path": "missing.csv"}}, ["data.path", "missing.csv", "not found"]),
        ({"data": {"source": "file"}}, ["data.path", "None"]),
        ({"sweep": {"training.epochz": [1, 2]}}, ["sweep.training.epochz", "did you mean 'training.epochs'"]),
        ({"sweep": {"training.loss": "bpr"}}, ["sweep.training.loss", "'bpr'", "list"]),
        ({"sweep": {"training.loss": ["bpr", "nope"]}}, ["sweep.training.loss[1]", "'nope'"]),
        ({"sweep": {"data.test_size": [0.1, 0.2]}}, ["sweep.data.test_size"]),
        ({"sweep": {"scoring": "ndcg"}}, ["sweep.scoring", "ndcg"]),
        ({"training": {"random_state": 99999999999999}}, ["training.random_state", "99999999999999", "4294967295"]),
        ({"training": {"random_state": -1}}, ["training.random_state", "-1"]),
        ({"data": {"random_state": 2**32}}, ["data.random_state", "4294967296", "[0, 4294967295] or null"]),
        ({"sweep": {"training.random_state": [0, 2**40]}}, ["sweep.training.random_state[1]", str(2**40)]),
        ({"data": {"source": "movielens", "name": "ml-5m"}}, ["data.name", "'ml-5m'", "ml-100k"]),
        ({"training": {"backend": "gpu"}}, ["training.backend", "'gpu'", "native"]),
        ({"training": {"deterministic": "no"}}, ["training.deterministic", "'no'"]),
        ({"training": {"n_threads": 100_000}}, ["training.n_threads", "100000"]),
    ],
)
def test_bad_config_exits_2_naming_the_key(tmp_path, capsys, change, expected):
    config = _merge(TINY, **change) if not any(s not in TINY for s in change) else {**TINY, **change}
    if "sweep" in change:  # replace the grid, so only the bad entry is in it
        config["sweep"] = change["sweep"]
    path = _write(tmp_path, config)
    assert main(["fit", "--config", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skbpr: configuration error:")
    for text in expected:
        assert text in err, err
    with pytest.raises(ConfigError):
        load_config(path)


def test_missing_config_file_and_bad_yaml_exit_2(tmp_path, capsys):
    assert main(["fit", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [1, 2\n", encoding="utf-8")
    assert main(["fit", "--config", str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    bad.write_text("- just\n- a list\n", encoding="utf-8")
    assert main(["fit", "--config", str(bad)]) == 2
    assert "mapping of sections" in capsys.readouterr().err


def _alias_bomb(depth: int) -> str:
    """A few hundred bytes of nested YAML aliases that expand to 9**depth scalars."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, depth + 1)]
    return "\n".join(lines) + f"\nmodel: *a{depth}\n"


def test_yaml_aliases_are_refused_naming_the_file(tmp_path, capsys):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_alias_bomb(6), encoding="utf-8")  # 9**6 scalars: the message used to repr them all
    assert main(["fit", "--config", str(bomb)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert str(bomb) in captured.err and "YAML aliases are not allowed" in captured.err, captured.err
    assert len(captured.err) < 1000
    with pytest.raises(ConfigError, match="aliases"):
        load_config(bomb)
    single = tmp_path / "single.yaml"  # even one alias, harmless as it is
    single.write_text("training: {epochs: &n 3, eval_every: *n}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"single\.yaml.*found \*n"):
        load_config(single)


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        ("training:\n  epochs: 2\nmodel:\n  n_components: 4\ntraining:\n  epochs: 3\n", "training", (1, 5)),
        ("model: {n_components: 4}\nmodel: {n_components: 8}\n", "model", (1, 2)),
        ("training:\n  epochs: 2\n  loss: warp\n  epochs: 3\n", "epochs", (2, 4)),
        ("sweep:\n  training.loss: [bpr]\n  'training.loss': [warp]\n", "training.loss", (2, 3)),
    ],
    ids=["sections", "flow-sections", "keys", "quoted-keys"],
)
def test_duplicate_yaml_keys_exit_2_naming_the_key_and_both_lines(tmp_path, capsys, text, key, lines):
    path = tmp_path / "twice.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["fit", "--config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"skbpr: configuration error: {path}: not valid YAML: duplicate key {key!r}")
    assert f"(lines {lines[0]} and {lines[1]})" in captured.err, captured.err


@pytest.mark.parametrize(
    "text",
    ["[" * 10_000, "{a: " * 10_000, "- " * 10_000 + "x", "training:\n" + "[" * 150],
    ids=["flow-lists", "flow-mappings", "block-lists", "in-a-section"],
)
def test_deeply_nested_yaml_exits_2(tmp_path, capsys, text):
    path = tmp_path / "deep.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["fit", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"skbpr: configuration error: {path}: not valid YAML: nested more than 100 levels deep")
    assert len(err) < 1000
    with pytest.raises(ConfigError, match="nested more than 100 levels"):
        load_config(path)
    validate_config(yaml.safe_load("sweep: {training.loss: [bpr, warp]}"))  # three levels are fine


def test_config_and_data_path_folders_are_named_as_folders(tmp_path, capsys):
    assert main(["fit", "--config", str(tmp_path)]) == 2
    assert f"configuration error: {str(tmp_path)!r} is a folder; expected a YAML configuration file" in (
        capsys.readouterr().err
    )
    (tmp_path / "events").mkdir()
    path = _write(tmp_path, {"data": {"source": "file", "path": "events"}, "mlflow": {"enabled": False}})
    assert main(["fit", "--config", path]) == 2
    err = capsys.readouterr().err
    assert "data.path: 'events' is a folder" in err and "expected the events file in it" in err, err
    assert "not found" not in err


def test_config_from_a_pipe_is_read(tmp_path):
    import threading

    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    text = yaml.safe_dump(_merge(TINY, model={"n_components": 5}))
    writer = threading.Thread(target=fifo.write_text, args=(text,), daemon=True)
    writer.start()
    try:
        config = load_config(fifo)
    finally:
        if writer.is_alive():  # nothing read the pipe: let the writer's open return
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        writer.join(timeout=10)
    assert config["model"]["n_components"] == 5 and config["data"]["n_users"] == 60


@pytest.mark.skipif(not Path("/bin/bash").exists(), reason="needs bash for <(...)")
def test_config_given_as_process_substitution_runs(tmp_path):
    """``skbpr fit --config <(printf ...)``: the shell passes /dev/fd/63, a pipe, which is read."""
    text = yaml.safe_dump({k: v for k, v in TINY.items() if k != "sweep"}).replace("'", "")
    script = f"{sys.executable} -m skbpr fit --config <(printf '%s' '{text}')"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        ["/bin/bash", "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "data: synthetic, 60 users, 30 items" in proc.stdout and "HybridBPR(n_components=8" in proc.stdout


def test_error_messages_bound_the_value_they_show(tmp_path, capsys):
    path = _write(tmp_path, _merge(TINY, model={"n_components": list(range(100_000))}))
    assert main(["fit", "--config", path]) == 2
    err = capsys.readouterr().err
    assert "model.n_components" in err and "[0, 1, 2" in err
    assert len(err) < 600, len(err)
    long_key = {"x" * 10_000: 1}
    with pytest.raises(ConfigError) as info:
        validate_config({"training": long_key})
    assert len(str(info.value)) < 1000
    with pytest.raises(ConfigError) as info:
        validate_config({"y" * 10_000: {"a": "z" * 10_000}})
    assert len(str(info.value)) < 1000


def test_non_utf8_config_names_the_file(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("# caf\xe9\nmodel: {n_components: 4}\n".encode("latin-1"))
    assert main(["fit", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skbpr: configuration error:")
    assert str(path) in err and "not UTF-8" in err and "0xe9" in err, err


def test_sweep_cv_larger_than_the_data_exits_2_before_the_search(tmp_path, capsys):
    config = _merge(TINY, sweep={"cv": 1000})
    path = _write(tmp_path, config)
    assert main(["sweep", "--config", path]) == 2
    captured = capsys.readouterr()
    assert "sweep.cv" in captured.err and "n_splits=1000" in captured.err, captured.err
    assert "grid search:" not in captured.out


def test_sweep_needs_a_grid(tmp_path, capsys):
    path = _write(tmp_path, {k: v for k, v in TINY.items() if k != "sweep"})
    assert main(["sweep", "--config", path]) == 2
    assert "sweep:" in capsys.readouterr().err


# --------------------------------------------------------------------------
# commands, in process
# --------------------------------------------------------------------------
def test_fit_evaluate_recommend(tiny, tmp_path, capsys):
    model_path = tmp_path / "out" / "model.joblib"
    plots = tmp_path / "plots"
    assert main(["fit", "--config", tiny, "--save", str(model_path), "--plot-dir", str(plots)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("model "))
    assert header.split() == ["model", "precision@10", "recall@10", "ndcg@10", "auc"]
    fitted = _table(out, "HybridBPR")
    baseline = _table(out, "popularity")
    assert len(fitted) == 4 and len(baseline) == 4
    assert all(0.0 <= v <= 1.0 for v in fitted + baseline)
    assert "MLflow" not in out  # tracking disabled
    assert (plots / "learning_curve.png").stat().st_size > 1000
    assert model_path.is_file()

    bundle = load_model(str(model_path))
    model = bundle["estimator"]
    assert model.n_users_ == 60 and model.callbacks is None
    assert len(model.history_) == 2 and "val_ndcg@10" in model.history_[-1]

    # evaluate: the saved configuration rebuilds the same split, so the same numbers
    assert main(["evaluate", "--model", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert _table(out, "HybridBPR") == fitted
    assert _table(out, "popularity") == baseline
    assert main(["evaluate", "--model", str(model_path), "--config", tiny]) == 0
    assert _table(capsys.readouterr().out, "HybridBPR") == fitted

    # recommend: k rows per user, best first, training positives excluded
    assert main(["recommend", "--model", str(model_path), "--users", "0", "1", "2", "--k", "4"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["user", "rank", "item", "score"]
    rows = [line.split() for line in lines[1:]]
    assert len(rows) == 12
    for user in (0, 1, 2):
        mine = [r for r in rows if int(r[0]) == user]
        assert [int(r[1]) for r in mine] == [1, 2, 3, 4]
        scores = [float(r[3]) for r in mine]
        assert scores == sorted(scores, reverse=True)
        seen = set(model.train_positives_[user].indices)
        assert not seen & {int(r[2]) for r in mine}
        ids, _ = model.recommend([user], k=4)
        assert [int(r[2]) for r in mine] == ids[0].tolist()


def test_recommend_and_evaluate_errors(tiny, tmp_path, capsys):
    model_path = tmp_path / "model.joblib"
    assert main(["fit", "--config", tiny, "--save", str(model_path)]) == 0
    capsys.readouterr()
    assert main(["recommend", "--model", str(model_path), "--users", "999"]) == 2
    err = capsys.readouterr().err
    assert "--users" in err and "['999']" in err and "[0, 60)" in err
    assert main(["recommend", "--model", str(tmp_path / "none.joblib"), "--users", "0"]) == 1
    assert "model file not found" in capsys.readouterr().err
    other = _write(tmp_path, _merge(TINY, data={"n_users": 70}), "other.yaml")
    assert main(["evaluate", "--model", str(model_path), "--config", other]) == 2
    assert "70" in capsys.readouterr().err


def test_evaluate_refuses_a_config_with_another_training_split_unless_allowed(tiny, tmp_path, capsys):
    model_path = tmp_path / "model.joblib"
    assert main(["fit", "--config", tiny, "--save", str(model_path)]) == 0
    capsys.readouterr()
    bundle = load_model(str(model_path))
    assert bundle["training"]["data"]["random_state"] == 0 and len(bundle["training"]["train_positives_sha256"]) == 64
    other = _write(tmp_path, _merge(TINY, data={"random_state": 1}), "other.yaml")
    assert main(["evaluate", "--model", str(model_path), "--config", other]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before any data is loaded
    assert captured.err.startswith(f"skbpr: error: --config {other!r}: the model {str(model_path)!r} was trained on")
    assert "data.random_state is 0 in the model file, 1 here" in captured.err
    assert "--allow-other-data" in captured.err
    assert main(["evaluate", "--model", str(model_path), "--config", other, "--allow-other-data"]) == 0
    captured = capsys.readouterr()
    assert "HybridBPR" in captured.out and "--allow-other-data: the model was trained on other data" in captured.err
    # the same split, written in another file with other tracking settings, is accepted
    same = _write(tmp_path, _merge(TINY, mlflow={"enabled": False, "experiment_name": "x"}), "same.yaml")
    assert main(["evaluate", "--model", str(model_path), "--config", same]) == 0
    assert _table(capsys.readouterr().out, "HybridBPR") == _table(_evaluate_output(model_path, capsys), "HybridBPR")


def _evaluate_output(model_path: Path, capsys) -> str:
    assert main(["evaluate", "--model", str(model_path)]) == 0
    return capsys.readouterr().out


def test_evaluate_refuses_an_events_file_whose_contents_changed(tmp_path, capsys):
    rng = np.random.default_rng(3)
    events = pd.DataFrame({"user_id": rng.integers(0, 40, 500), "item_id": rng.integers(0, 25, 500)}).drop_duplicates()
    events.to_csv(tmp_path / "events.csv", index=False)
    config = {k: v for k, v in TINY.items() if k not in ("sweep", "data")}
    config["data"] = {"source": "file", "path": "events.csv"}
    path = _write(tmp_path, config)
    model_path = tmp_path / "model.joblib"
    assert main(["fit", "--config", path, "--save", str(model_path)]) == 0
    capsys.readouterr()
    changed = events.copy()
    changed["item_id"] = (changed["item_id"] + 1) % 25  # same users and items, other positives
    changed.drop_duplicates().to_csv(tmp_path / "events.csv", index=False)
    assert main(["evaluate", "--model", str(model_path), "--config", path]) == 2
    err = capsys.readouterr().err
    assert "was trained on other data or another split (training positives sha256" in err, err
    assert main(["evaluate", "--model", str(model_path)]) == 2  # the saved configuration reads the same file
    err = capsys.readouterr().err
    assert err.startswith(f"skbpr: error: the model's configuration: the model {str(model_path)!r} was trained")
    assert "The data changed since the model was trained: fit it again, or pass --allow-other-data" in err
    assert main(["evaluate", "--model", str(model_path), "--allow-other-data"]) == 0


def test_truncated_or_foreign_model_files_exit_2_naming_the_file(tiny, tmp_path, capsys):
    from skbpr.models.files import ModelFileError, read_model_file

    model_path = tmp_path / "model.joblib"
    assert main(["fit", "--config", tiny, "--save", str(model_path)]) == 0
    capsys.readouterr()
    whole = model_path.read_bytes()
    broken = tmp_path / "broken.joblib"
    samples = {f"first {n} bytes": whole[:n] for n in range(0, len(whole), max(1, len(whole) // 40))}
    samples |= {"random bytes": np.random.default_rng(0).bytes(2000), "JSON": b'{"a": 1}', "text": b"hello\n"}
    samples |= {"gzip of text": __import__("gzip").compress(b"not a pickle"), "a pickled list": pickle.dumps([1, 2])}
    for what, content in samples.items():
        broken.write_bytes(content)
        with pytest.raises(ModelFileError, match="is not a complete skbpr model file") as info:
            read_model_file(broken)
        assert isinstance(info.value, ValueError) and info.value.path == str(broken), what
        assert str(info.value).startswith(f"{str(broken)!r} is not a complete skbpr model file ("), what
    for command in (["evaluate", "--model", str(broken)], ["recommend", "--model", str(broken), "--users", "0"]):
        broken.write_bytes(whole[: len(whole) // 2])
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"skbpr: error: {str(broken)!r} is not a complete skbpr model file"), err


# --------------------------------------------------------------------------
# recommend: raw ids, titles, output files
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def events_model(tmp_path_factory):
    """A model fitted on an events CSV with string ids (users 'ana', 'bo', ..., items 'i00' ...)."""
    folder = tmp_path_factory.mktemp("events")
    rng = np.random.default_rng(1)
    names = [f"user-{n}" for n in ("ana", "bo", "cy", "dee", "eli", "fay")] + [f"u{k:02d}" for k in range(34)]
    events = pd.DataFrame(
        {"who": [names[k] for k in rng.integers(0, len(names), 700)], "what": rng.integers(0, 30, 700)}
    )
    events["what"] = [f"i{k:02d}" for k in events["what"]]
    events.drop_duplicates().to_csv(folder / "events.csv", index=False)
    config = {k: v for k, v in TINY.items() if k != "sweep"}
    config["data"] = {"source": "file", "path": "events.csv", "user_col": "who", "item_col": "what"}
    model_path = folder / "model.joblib"
    assert main(["fit", "--config", _write(folder, config), "--save", str(model_path)]) == 0
    return model_path


def test_recommend_takes_raw_user_ids(events_model, capsys):
    capsys.readouterr()
    bundle = load_model(str(events_model))
    user_ids = list(bundle["user_ids"])
    assert main(["recommend", "--model", str(events_model), "--users", "user-bo", "user-ana", "--k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["user", "user_id", "rank", "item", "item_id", "score"]
    rows = [line.split() for line in lines[1:]]
    assert [r[1] for r in rows] == ["user-bo"] * 3 + ["user-ana"] * 3
    assert {int(r[0]) for r in rows if r[1] == "user-bo"} == {user_ids.index("user-bo")}
    expected, _ = bundle["estimator"].recommend([user_ids.index("user-bo")], k=3)
    assert [int(r[3]) for r in rows[:3]] == list(expected[0])
    assert [r[4] for r in rows[:3]] == [bundle["item_ids"][i] for i in expected[0]]
    # --index reads the same users by position
    assert main(["recommend", "--model", str(events_model), "--index", "--users", str(user_ids.index("user-bo"))]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[1] == "user-bo"


def test_recommend_unknown_raw_id_exits_2_naming_users(events_model, capsys):
    capsys.readouterr()
    assert main(["recommend", "--model", str(events_model), "--users", "user-ana", "nobody", "3"]) == 2
    err = capsys.readouterr().err
    assert "--users" in err and "['nobody', '3']" in err and "--index" in err
    assert main(["recommend", "--model", str(events_model), "--index", "--users", "u07"]) == 2
    assert "['u07']" in capsys.readouterr().err
    assert main(["recommend", "--model", str(events_model), "--users", "user-ana", "--k", "0"]) == 2
    assert "--k" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".csv", ".json", ".parquet", ".CSV"])
def test_recommend_writes_the_output_format_of_the_suffix(events_model, tmp_path, capsys, suffix):
    capsys.readouterr()
    out = tmp_path / "sub" / f"recs{suffix}"
    assert main(["recommend", "--model", str(events_model), "--users", "user-cy", "user-dee", "--k", "4",
                 "--output", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert f"8 recommendations for 2 users written to {out}" in printed
    assert "score" not in printed  # written, not printed
    if suffix.lower() == ".csv":
        frame = pd.read_csv(out)
    elif suffix == ".json":
        frame = pd.DataFrame(json.loads(out.read_text(encoding="utf-8")))
    else:
        frame = pd.read_parquet(out)
    assert list(frame.columns) == ["user", "user_id", "rank", "item", "item_id", "score"]
    assert list(frame["user_id"]) == ["user-cy"] * 4 + ["user-dee"] * 4
    assert list(frame["rank"]) == [1, 2, 3, 4] * 2
    assert frame["item_id"].str.fullmatch(r"i\d\d").all()
    for _, group in frame.groupby("user"):
        assert list(group["score"]) == sorted(group["score"], reverse=True)


@pytest.mark.parametrize("name", ["recs.txt", "recs", "recs.csv/"])
def test_recommend_bad_output_exits_2_before_loading_the_model(tmp_path, capsys, name):
    missing = tmp_path / "no-such-model.joblib"  # never read: the output is checked first
    target = str(tmp_path / name) if not name.endswith("/") else str(tmp_path / name.rstrip("/")) + "/"
    assert main(["recommend", "--model", str(missing), "--users", "0", "--output", target]) == 2
    err = capsys.readouterr().err
    assert "--output" in err and repr(target) in err
    assert "model file not found" not in err
    assert not (tmp_path / name.rstrip("/")).exists()


def test_recommend_output_that_is_a_folder_exits_2(tmp_path, capsys):
    folder = tmp_path / "recs.csv"
    folder.mkdir()
    assert main(["recommend", "--model", "x.joblib", "--users", "0", "--output", str(folder)]) == 2
    assert "--output" in capsys.readouterr().err


def test_recommend_prints_movielens_titles(tmp_path, capsys):
    """A MovieLens-format folder (ml-latest-small layout) used offline; the titles reach the output."""
    home = tmp_path / "movielens"
    folder = home / "ml-latest-small"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    movies = pd.DataFrame(
        {
            "movieId": np.arange(1, 31) * 10,
            "title": [f"Film number {k}, The ({1980 + k})" for k in range(30)],
            "genres": ["Drama|Comedy"] * 30,
        }
    )
    movies.to_csv(folder / "movies.csv", index=False)
    ratings = pd.DataFrame(
        {"userId": rng.integers(1, 41, 900), "movieId": rng.integers(1, 31, 900) * 10}
    ).drop_duplicates()
    ratings["rating"] = 5.0
    ratings["timestamp"] = 978300760
    ratings.to_csv(folder / "ratings.csv", index=False)
    config = {k: v for k, v in TINY.items() if k != "sweep"}
    config["data"] = {"source": "movielens", "name": "ml-latest-small", "data_home": str(home), "download": False}
    model_path = tmp_path / "ml.joblib"
    assert main(["fit", "--config", _write(tmp_path, config), "--save", str(model_path)]) == 0
    user = int(ratings["userId"].iloc[0])
    capsys.readouterr()
    assert main(["recommend", "--model", str(model_path), "--users", str(user), "--k", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["user", "user_id", "rank", "item", "item_id", "score", "title"]
    titles = dict(zip(movies["movieId"], movies["title"], strict=True))
    for line in lines[1:]:
        fields = line.split(maxsplit=6)
        assert fields[1] == str(user)
        assert fields[6] == titles[int(fields[4])]  # the title of the recommended movie, spaces kept
    out = tmp_path / "recs.json"
    assert main(["recommend", "--model", str(model_path), "--users", str(user), "--k", "2", "--output", str(out)]) == 0
    records = json.loads(out.read_text(encoding="utf-8"))
    assert [r["title"] for r in records] == [titles[r["item_id"]] for r in records]
    assert all(r["user_id"] == user for r in records)


def test_sweep_parallel(tiny, tmp_path, capsys):
    plots = tmp_path / "plots"
    best = tmp_path / "best.joblib"
    assert main(["sweep", "--config", tiny, "--n-jobs", "2", "--plot-dir", str(plots), "--save", str(best)]) == 0
    out = capsys.readouterr().out
    assert "4 candidates x 2 per-user folds" in out
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("rank "))
    assert lines[start].split() == ["rank", "training.loss", "model.n_components", "ndcg@10", "auc"]
    table = lines[start + 1 : start + 5]
    assert [int(line.split()[0]) for line in table] == [1, 2, 3, 4]
    assert {(line.split()[1], line.split()[2]) for line in table} == {
        ("bpr", "4"),
        ("bpr", "8"),
        ("warp", "4"),
        ("warp", "8"),
    }
    best_line = next(line for line in lines if line.startswith("best by ndcg@10:"))
    top = table[0].split()
    assert f"training.loss={top[1]!r}" in best_line and f"model.n_components={top[2]}" in best_line
    assert len(_table(out, "HybridBPR (best)")) == 4
    assert (plots / "sweep.png").stat().st_size > 1000
    model = load_model(str(best))["estimator"]
    assert model.loss == top[1] and model.n_components == int(top[2])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_events_file_source(tmp_path, capsys, fmt):
    rng = np.random.default_rng(0)
    n = 600
    events = pd.DataFrame(
        {
            "uid": [f"u{u}" for u in rng.integers(0, 40, n)],
            "movie": [f"m{i:03d}" for i in rng.integers(0, 25, n)],
            "stars": rng.integers(1, 6, n),
        }
    ).drop_duplicates(["uid", "movie"])
    sub = tmp_path / "data"
    sub.mkdir()
    name = f"events.{fmt}"
    if fmt == "csv":
        events.to_csv(sub / name, index=False)
    else:
        events.to_parquet(sub / name, index=False)
    data = {
        "source": "file",
        "path": f"data/{name}",  # relative to the configuration file
        "user_col": "uid",
        "item_col": "movie",
        "rating_col": "stars",
        "threshold": 3,
        "test_size": 0.25,
    }
    config = {k: v for k, v in TINY.items() if k != "sweep"}
    config["data"] = data
    path = _write(tmp_path, config)
    model_path = tmp_path / "m.joblib"
    assert main(["fit", "--config", path, "--save", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert "data: file, 40 users, 25 items" in out
    assert int(re.search(r"(\d+) positives", out).group(1)) == int((events["stars"] >= 3).sum())
    assert main(["recommend", "--model", str(model_path), "--users", "u0", "--k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["user", "user_id", "rank", "item", "item_id", "score"]
    for line in lines[1:]:
        user, user_id, _, item, item_id, _ = line.split()
        assert user_id == "u0" and item_id == f"m{int(item):03d}"

    bad = _write(tmp_path, {**config, "data": {**data, "item_col": "film"}}, "bad.yaml")
    assert main(["fit", "--config", bad]) == 2
    err = capsys.readouterr().err
    assert "data.item_col" in err and "'film'" in err


def test_tracking_unavailable_falls_back_to_untracked(tiny, tmp_path, capsys, monkeypatch):
    config = _merge(TINY, mlflow={"enabled": True})
    path = _write(tmp_path, config)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if MLflow were not installed: imports of it fail
    assert main(["fit", "--config", path]) == 0
    captured = capsys.readouterr()
    assert "tracking is off: MLflow is not installed" in captured.err
    assert len(_table(captured.out, "HybridBPR")) == 4


# --------------------------------------------------------------------------
# the installed entry point
# --------------------------------------------------------------------------
def test_python_dash_m_entry_point(tiny, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-m", "skbpr", "fit", "--config", tiny],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert len(_table(done.stdout, "HybridBPR")) == 4
    bad = _write(tmp_path, _merge(TINY, training={"batch_size": "big"}), "bad.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "skbpr", "fit", "--config", bad],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert done.returncode == 2
    assert "training.batch_size" in done.stderr and "'big'" in done.stderr


# --------------------------------------------------------------------------
# tracking (needs MLflow)
# --------------------------------------------------------------------------
def test_tracking_default_store_fit_and_sweep(tmp_path, capsys, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from skbpr.plotting import best_runs_table, plot_learning_curve, plot_sweep

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(None)
    try:
        config = _merge(TINY, mlflow={"enabled": True, "experiment_name": "cli-test", "log_model": False})
        config["sweep"] = {"training.loss": ["bpr", "warp"], "cv": 2}
        path = _write(tmp_path, config)
        assert main(["fit", "--config", path, "--plot-dir", "plots"]) == 0
        out = capsys.readouterr().out
        match = re.search(r"MLflow run ([0-9a-f]{32}) \(experiment 'cli-test'\) stored in (\S+)", out)
        assert match, out
        run_id, uri = match.groups()
        assert uri == "sqlite:///" + str(tmp_path / "mlflow.db")  # MLflow's default store, made absolute
        client = MlflowClient(tracking_uri=uri)
        run = client.get_run(run_id)
        test_ndcg = _table(out, "HybridBPR")[2]
        assert run.data.metrics["test_ndcg_at_10"] == pytest.approx(test_ndcg, abs=5e-5)
        assert [m.step for m in client.get_metric_history(run_id, "loss")] == [1, 2]
        artifacts = {a.path for a in client.list_artifacts(run_id)}
        assert {"config.yaml", "learning_curve.png"} <= artifacts
        fig = plot_learning_curve(run_id, tracking_uri=uri)
        # one panel per validation metric, each with the run's best epoch marked
        best = int(run.data.metrics["best_epoch"])
        labels = [[line.get_label() for line in ax.get_lines()] for ax in fig.axes[1:]]
        assert labels == [["val_auc", f"best epoch ({best})"], ["val_ndcg@10", f"best epoch ({best})"]]

        assert main(["sweep", "--config", path, "--n-jobs", "1"]) == 0
        out = capsys.readouterr().out
        parent_id = re.search(r"MLflow sweep run ([0-9a-f]{32})", out).group(1)
        exp = client.get_experiment_by_name("cli-test")
        children = client.search_runs([exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")
        candidates = [r for r in children if r.data.tags.get("skbpr.kind") == "sweep-candidate"]
        fits = [r for r in children if "skbpr.cv_split" in r.data.tags]
        refits = [r for r in children if r.data.tags.get("skbpr.cv_refit") == "true"]
        assert len(candidates) == 2 and len(fits) == 4 and len(refits) == 1
        assert {r.data.params["loss"] for r in candidates} == {"bpr", "warp"}
        # each candidate run and its fold runs share the digest of the candidate's parameters: the numbers were
        # checked against cv_results_ after the search, and none was doubted or changed
        digests = {r.data.tags["skbpr.cv_candidate"]: r.data.tags["skbpr.cv_params_digest"] for r in candidates}
        assert len(set(digests.values())) == 2
        for fit in fits:
            assert fit.data.tags["skbpr.cv_params_digest"] == digests[fit.data.tags["skbpr.cv_candidate"]]
            assert fit.data.params["loss"] == next(
                c.data.params["loss"]
                for c in candidates
                if c.data.tags["skbpr.cv_candidate"] == fit.data.tags["skbpr.cv_candidate"]
            )
            assert fit.data.tags.get("skbpr.cv_candidate_unverified") in (None, "false")
            assert "skbpr.cv_candidate_renumbered" not in fit.data.tags
        parent = client.get_run(parent_id)
        assert parent.data.params["best.training.loss"] in {"bpr", "warp"}
        assert "test_ndcg_at_10" in parent.data.metrics
        table = best_runs_table("cli-test", tracking_uri=uri)
        assert list(table["loss"]) == [
            parent.data.params["best.training.loss"],
            *({"bpr", "warp"} - {parent.data.params["best.training.loss"]}),
        ]
        fig = plot_sweep("cli-test", tracking_uri=uri)
        assert [ax.get_xlabel() for ax in fig.axes] == ["loss"]
    finally:
        mlflow.set_tracking_uri(previous)


def test_sweep_output_has_no_mlflow_info_notices(tmp_path):
    pytest.importorskip("mlflow")
    config = _merge(TINY, mlflow={"enabled": True, "experiment_name": "quiet", "log_model": False})
    config["sweep"] = {"training.loss": ["bpr", "warp"], "cv": 2}
    path = _write(tmp_path, config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MPLBACKEND"] = "Agg"

    def sweep(**extra: str) -> str:
        folder = tmp_path / f"run-{len(extra)}"
        folder.mkdir()
        done = subprocess.run(
            [sys.executable, "-m", "skbpr", "sweep", "--config", path],
            capture_output=True,
            text=True,
            cwd=folder,
            env={**env, **extra},
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert "MLflow sweep run" in done.stdout
        return done.stdout + done.stderr

    notice = "does not exist. Creating a new experiment"
    assert notice not in sweep()
    # MLflow's own level setting still decides when given: the notice is there at INFO
    assert notice in sweep(MLFLOW_LOGGING_LEVEL="INFO")


def test_tracking_store_down_falls_back(tmp_path, capsys, monkeypatch):
    pytest.importorskip("mlflow")
    import socket

    from mlflow.tracking import MlflowClient

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.chdir(tmp_path)
    fallback = "sqlite:///" + str(tmp_path / "fallback.db")
    config = _merge(
        TINY,
        mlflow={
            "enabled": True,
            "tracking_uri": f"http://127.0.0.1:{port}",
            "fallback_uri": fallback,
            "experiment_name": "down",
            "log_model": False,
        },
    )
    config["sweep"] = {"training.loss": ["bpr", "warp"], "cv": 2}
    path = _write(tmp_path, config)
    with pytest.warns(UserWarning, match="fallback|failed"):
        assert main(["fit", "--config", path]) == 0
    out = capsys.readouterr().out
    assert f"stored in {fallback}" in out
    assert main(["sweep", "--config", path, "--n-jobs", "1"]) == 0
    captured = capsys.readouterr()
    assert f"the sweep is recorded in the fallback store {fallback}" in captured.err
    parent_id = re.search(r"MLflow sweep run ([0-9a-f]{32})", captured.out).group(1)
    client = MlflowClient(tracking_uri=fallback)
    exp = client.get_experiment_by_name("down")
    children = client.search_runs([exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")
    assert len(children) == 2 * 2 + 1 + 2  # fold fits, refit, candidates


def test_patience_never_watches_the_test_split(tmp_path, capsys):
    """With early stopping and no validation_fraction, part of train is held out, not the test split."""
    from skbpr.cli import commands as cli

    config = tmp_path / "es.yaml"
    config.write_text(
        "data: {source: synthetic, n_users: 150, n_items: 80, n_interactions: 2000}\n"
        "model: {n_components: 4}\n"
        "training: {epochs: 4, patience: 1}\n"
        "mlflow: {enabled: false}\n"
    )
    save = tmp_path / "m.joblib"
    assert cli.main(["fit", "--config", str(config), "--save", str(save)]) == 0
    assert "early stopping watches 10%" in capsys.readouterr().out
    model = cli.load_model(str(save))["estimator"]
    assert model.validation_fraction == 0.1
    assert all("val_ndcg@10" in h for h in model.history_)


@pytest.mark.parametrize(("epochs", "expected"), [(1, 1), (10, 1), (11, 2), (20, 2), (25, 3), (100, 10)])
def test_eval_every_defaults_to_about_ten_evaluations(epochs, expected):
    config = validate_config({"training": {"epochs": epochs}})
    assert config["training"]["eval_every"] is None
    assert config.estimator_params()["eval_every"] == expected
    # an explicit value wins, and null in a sweep grid means the same cadence
    assert validate_config({"training": {"epochs": epochs, "eval_every": 1}}).estimator_params()["eval_every"] == 1
    grid = validate_config({"training": {"epochs": epochs}, "sweep": {"training.eval_every": [None, 3]}})
    assert grid.param_grid() == {"eval_every": [expected, 3]}


def test_fit_prints_epochs_run_and_best_epoch(tmp_path, capsys):
    config = _merge(TINY, training={"epochs": 20})
    save = tmp_path / "m.joblib"
    assert main(["fit", "--config", _write(tmp_path, config), "--save", str(save)]) == 0
    out = capsys.readouterr().out
    model = load_model(str(save))["estimator"]
    evaluated = [row["epoch"] for row in model.history_ if "val_ndcg@10" in row]
    assert evaluated == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]  # the default cadence: every ceil(20 / 10) epochs
    assert "epochs run: 20 (validation on the test split every 2 epochs, 10 evaluations)" in out.splitlines()
    best = next(row for row in model.history_ if row["epoch"] == model.best_epoch_)
    assert best["val_ndcg@10"] == max(model.history_[e - 1]["val_ndcg@10"] for e in evaluated)
    line = f"best epoch: {model.best_epoch_} (validation ndcg@10 {best['val_ndcg@10']:.4f}; "
    ends = "the weights are those of epoch 20)"
    assert any(text.startswith(line) and text.endswith(ends) for text in out.splitlines())


def test_fit_without_evaluation_says_so(tmp_path, capsys):
    config = _merge(TINY, training={"epochs": 3, "eval_every": 5})
    assert main(["fit", "--config", _write(tmp_path, config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "epochs run: 3 (validation on the test split every 5 epochs, 0 evaluations)" in lines
    assert "best epoch: none (no evaluation ran; lower training.eval_every)" in lines


def test_fit_with_early_stopping_reports_where_it_stopped(tmp_path, capsys):
    config = _merge(TINY, training={"epochs": 30, "patience": 1, "eval_every": 1})
    save = tmp_path / "m.joblib"
    assert main(["fit", "--config", _write(tmp_path, config), "--save", str(save)]) == 0
    out = capsys.readouterr().out
    model = load_model(str(save))["estimator"]
    run = len(model.history_)
    assert run < 30  # tiny data: no progress long before 30 epochs
    expected = f"epochs run: {run}, stopped early after {run} of 30 (validation on held-out train positives every 1"
    assert any(line.startswith(expected) for line in out.splitlines())
    assert f"best epoch: {model.best_epoch_} (validation ndcg@10 " in out
    assert "its weights were kept)" in out


def test_save_is_atomic_and_leaves_no_partial_file(tmp_path, monkeypatch):
    """A failure while writing leaves the previous model file intact and no partial file."""
    import joblib

    from skbpr.cli.config import validate_config as validate
    from skbpr.cli.files import save_model

    target = tmp_path / "model.joblib"
    target.write_bytes(b"previous")

    def broken_dump(obj, path):
        open(path, "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(joblib, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        save_model(str(target), object(), validate({}), type("D", (), {"user_ids": None, "item_ids": None}))
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["model.joblib"]


# --------------------------------------------------------------------------
# output destinations are checked before any data is loaded
# --------------------------------------------------------------------------
def _bad_destinations(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """name -> (value, text the message must hold)."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "plain.txt").write_text("a file")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    device = tmp_path / "null-device"  # never a real device: code under test may replace it
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (OSError, AttributeError):
        device = None
    return {
        "existing directory": (str(tmp_path / "folder"), "existing directory"),
        "trailing slash": (str(tmp_path / "newdir") + "/", "ends with a separator"),
        "under a file": (str(tmp_path / "plain.txt" / "model.joblib"), "is not a directory"),
        "under a file, deeper": (str(tmp_path / "plain.txt" / "sub" / "model.joblib"), "is not a directory"),
        "device node": (None if device is None else str(device), "not a regular file"),
        "fifo": (str(fifo), "not a regular file"),
    }


@pytest.mark.parametrize(
    "case",
    ["existing directory", "trailing slash", "under a file", "under a file, deeper", "device node", "fifo"],
)
@pytest.mark.parametrize("command", ["fit", "sweep"])
def test_bad_save_destination_exits_2_before_any_work(tiny, tmp_path, capsys, case, command):
    value, reason = _bad_destinations(tmp_path)[case]
    if value is None:
        pytest.skip("cannot create a device node here")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main([command, "--config", tiny, "--save", value]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing loaded, nothing fitted
    assert captured.err.startswith("skbpr: error: --save ")
    assert repr(value) in captured.err and reason in captured.err, captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    assert not (tmp_path / "newdir").exists()
    if case == "device node":
        assert Path(value).is_char_device()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_save_into_read_only_folder_exits_2(tiny, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["fit", "--config", tiny, "--save", str(locked / "m.joblib")]) == 2
    finally:
        locked.chmod(0o700)
    assert "is not writable" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["plot dir is a file", "plot dir under a file", "plot file is a directory"])
def test_bad_plot_dir_exits_2_before_any_work(tiny, tmp_path, capsys, case):
    (tmp_path / "plain.txt").write_text("a file")
    (tmp_path / "plots" / "learning_curve.png").mkdir(parents=True)
    value, reason = {
        "plot dir is a file": (str(tmp_path / "plain.txt"), "is not a directory"),
        "plot dir under a file": (str(tmp_path / "plain.txt" / "plots"), "is not a directory"),
        "plot file is a directory": (str(tmp_path / "plots"), "learning_curve.png"),
    }[case]
    assert main(["fit", "--config", tiny, "--plot-dir", value]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("skbpr: error: --plot-dir ") and repr(value) in captured.err
    assert reason in captured.err, captured.err


def test_a_long_legal_save_name_is_written(tiny, tmp_path):
    """250 characters is a legal name; the partial file the write goes through must be legal too."""
    target = tmp_path / ("m" * 250)
    assert main(["fit", "--config", tiny, "--save", str(target)]) == 0
    assert load_model(str(target))["estimator"].n_users_ == 60
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("m")] == [target.name]


@pytest.mark.parametrize("case", ["proc", "name too long", "proc, missing folder"])
def test_save_where_the_file_system_refuses_files_exits_2_before_any_work(tiny, tmp_path, capsys, case):
    """Permission bits pass (root may write anywhere, by them), the file system refuses: found before the work."""
    if case.startswith("proc") and not os.path.isdir("/proc/self"):
        pytest.skip("no /proc here")
    value = {
        "proc": "/proc/m.joblib",
        "name too long": str(tmp_path / ("n" * 256)),
        "proc, missing folder": "/proc/models/m.joblib",
    }[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["fit", "--config", tiny, "--save", value]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing loaded, nothing fitted
    assert captured.err.startswith(f"skbpr: error: --save {value!r}: "), captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not os.path.exists("/proc/m.joblib") and not os.path.exists("/proc/models")


def test_save_creates_missing_folders_under_a_writable_one(tiny, tmp_path):
    target = tmp_path / "a" / "b" / "model.joblib"
    assert main(["fit", "--config", tiny, "--save", str(target)]) == 0
    assert load_model(str(target))["estimator"].n_users_ == 60


# --------------------------------------------------------------------------
# the example configuration with every key
# --------------------------------------------------------------------------
EXAMPLE = Path(__file__).resolve().parents[1] / "benchmarks" / "configs" / "run.yaml"


def test_example_run_yaml_is_generated_from_the_schema():
    from skbpr.config import example_config

    assert EXAMPLE.read_text(encoding="utf-8") == example_config(), (
        "benchmarks/configs/run.yaml is out of date: regenerate it with `skbpr config > benchmarks/configs/run.yaml`"
    )


def test_example_run_yaml_holds_every_key_with_its_default():
    from skbpr.config import SCHEMA

    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert list(raw) == list(SCHEMA)
    for section, fields in SCHEMA.items():
        given = {k: v for k, v in raw[section].items() if k != "scoring"}
        assert given == {key: field.default for key, field in fields.items()}, section
    assert raw["sweep"]["scoring"] == ["ndcg@10", "auc"]
    # it loads, and loading it is the same as loading an empty configuration
    assert load_config(EXAMPLE).to_dict() == validate_config({}).to_dict()


def test_skbpr_config_prints_the_example(capsys, tmp_path):
    assert main(["config"]) == 0
    assert capsys.readouterr().out == EXAMPLE.read_text(encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "skbpr.config"], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert done.stdout == EXAMPLE.read_text(encoding="utf-8")


def test_skbpr_config_embedded_prints_the_job_fit_runs_without_a_file(capsys):
    """The embedded job's own settings are written in its configuration; left-out keys are the estimator's."""
    from skbpr import HybridBPR
    from skbpr.config import CLI_DEFAULTS

    assert main(["config", "--embedded"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    embedded = load_config(None).estimator_params()
    assert validate_config(printed).estimator_params() == embedded
    assert (embedded["n_components"], embedded["epochs"]) == (32, 20)
    # a file with only a tracking setting trains HybridBPR's own defaults, not the embedded job's
    plain = validate_config({"mlflow": {"enabled": False}}).estimator_params()
    estimator = HybridBPR().get_params()
    for name, value in plain.items():
        if name in CLI_DEFAULTS or name == "eval_every":
            continue
        assert value == estimator[name], name
    assert (plain["n_components"], plain["epochs"]) == (estimator["n_components"], estimator["epochs"]) == (64, 50)
    # every setting in which the embedded job departs from those defaults is written in its configuration
    sections = ("model", "optimizer", "training")
    written = {f"{s}.{k}" for s in sections for k in printed.get(s) or {}}
    job, defaults = load_config(None), validate_config({})
    departs = {f"{s}.{k}" for s in sections for k, v in job[s].items() if v != defaults[s][k]}
    assert departs == written - {"training.loss", "training.random_state"}  # those two restate the defaults
    # and skbpr config, the defaults, points at it
    assert main(["config"]) == 0
    assert "skbpr config --embedded" in capsys.readouterr().out


def test_fit_without_a_file_says_it_runs_the_embedded_job(monkeypatch, capsys):
    from skbpr.cli import fitting

    class Stop(Exception):
        pass

    def stop(config):
        raise Stop

    monkeypatch.setattr(fitting, "load_data", stop)  # the line comes before any data is loaded
    with pytest.raises(Stop):
        main(["fit"])
    assert capsys.readouterr().out == "configuration: the embedded default job (skbpr config --embedded prints it)\n"


def test_tracking_page_configuration_excerpt_shows_the_defaults():
    """The YAML excerpt of docs/tracking.md shows the defaults a left-out key takes (the sweep is an example)."""
    from skbpr.config import SCHEMA

    page = (Path(__file__).resolve().parents[1] / "docs" / "tracking.md").read_text(encoding="utf-8")
    section = page.split("## The configuration file", 1)[1]
    excerpt = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    assert set(excerpt) == set(SCHEMA)
    for name, values in excerpt.items():
        if name == "sweep":
            continue
        for key, value in values.items():
            assert value == SCHEMA[name][key].default, f"{name}.{key}: the page shows {value!r}"


def test_fit_help_lists_the_config_keys_and_points_at_the_example(capsys):
    from skbpr.config import SCHEMA

    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "benchmarks/configs/run.yaml" in text and "docs/tracking.md" in text and "skbpr config" in text
    words = set(re.findall(r"[\w.<>]+", text))
    for section, fields in SCHEMA.items():
        assert f"{section}:" in text
        assert set(fields) <= words, section


def test_config_schema_is_the_estimators_signature():
    """Every HybridBPR parameter is a configuration key with the estimator's default, unless documented."""
    import inspect

    from skbpr import HybridBPR
    from skbpr.config import CLI_DEFAULTS, NOT_CONFIGURED, SCHEMA

    fields = {f.param: f for s in ("model", "optimizer", "training") for f in SCHEMA[s].values() if f.param}
    signature = inspect.signature(HybridBPR).parameters
    assert set(fields) | set(NOT_CONFIGURED) == set(signature)
    for name, field in fields.items():
        assert field.default == CLI_DEFAULTS.get(name, signature[name].default), name
        assert field.help, name


def test_a_new_estimator_parameter_appears_in_the_config(tmp_path, monkeypatch):
    from skbpr.utils.signature import read_parameters

    (tmp_path / "toy_estimator.py").write_text(
        'class Toy:\n    """A toy.\n\n    Parameters\n    ----------\n'
        "    rank : int, default=8\n        Size of the thing. More words.\n"
        '    mode : {"a", "b"}, default="a"\n        How.\n\n    Attributes\n    ----------\n'
        '    x_ : int\n        Not a parameter.\n    """\n\n'
        '    def __init__(self, rank: int = 8, *, mode: str = "a", seed: int | None = None):\n        pass\n',
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    params = {p.name: p for p in read_parameters("toy_estimator", "Toy")}
    assert params["rank"].default == 8 and params["rank"].summary == "Size of the thing."
    assert params["mode"].choices == ("a", "b") and params["mode"].default == "a"
    assert params["seed"].annotation == "int | None" and params["seed"].default is None


def test_config_error_names_the_key_of_the_estimator_parameter_that_failed():
    with pytest.raises(ConfigError, match=r"^training\.n_threads: n_threads must be at most"):
        validate_config({"training": {"n_threads": 100_000}})
    with pytest.raises(ConfigError, match=r"^model\.n_components: n_components must be an integer > 0, got 0"):
        validate_config({"model": {"n_components": 0}})


# --------------------------------------------------------------------------
# evaluate: chosen metrics and comparisons
# --------------------------------------------------------------------------
def test_evaluate_metrics_and_compare(tiny, tmp_path, capsys):
    first, second = tmp_path / "first.joblib", tmp_path / "second.joblib"
    assert main(["fit", "--config", tiny, "--save", str(first)]) == 0
    other_seed = _write(tmp_path, _merge(TINY, training={"random_state": 5}), "seed5.yaml")
    assert main(["fit", "--config", other_seed, "--save", str(second)]) == 0
    capsys.readouterr()

    assert main(["evaluate", "--model", str(first), "--metrics", "ndcg@10", "coverage@10", "novelty@10"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("model "))
    assert header.split() == ["model", "ndcg@10", "coverage@10", "novelty@10"]
    model = load_model(str(first))["estimator"]
    from skbpr.cli.config import load_config
    from skbpr.cli.fitting import load_data, split_data
    from skbpr.metrics import compare_models, evaluate

    config = load_config(tiny)
    _, test = split_data(config, load_data(config))
    expected = evaluate(model, test, metrics=["ndcg@10", "coverage@10", "novelty@10"])
    assert _table(out, "HybridBPR") == pytest.approx([round(v, 4) for v in expected.values()], abs=1e-4)

    args = ["evaluate", "--model", str(first), "--compare", str(second), "--metrics", "ndcg@10", "coverage@10"]
    assert main(args) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("model "))
    assert header.split() == [
        "model",
        "metric",
        "mean",
        "ci_low",
        "ci_high",
        "n_users",
        "diff",
        "p_value",
        "p_corrected",
    ]
    rows = [line.split() for line in lines[lines.index(header) + 1 :]]
    assert [r[:2] for r in rows] == [
        ["first", "ndcg@10"], ["first", "coverage@10"], ["second", "ndcg@10"], ["second", "coverage@10"],
    ]  # fmt: skip
    table = compare_models(
        {"first": model, "second": load_model(str(second))["estimator"]}, test, metrics=["ndcg@10", "coverage@10"]
    )
    assert float(rows[2][2]) == pytest.approx(table["mean"][2], abs=1e-4)
    assert float(rows[2][7]) == pytest.approx(table["p_value"][2], rel=1e-2)
    assert "baseline: first" in out

    assert main(["evaluate", "--model", str(first), "--metrics", "ndgc@10"]) == 2
    assert "--metrics" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(first), "--metrics", "coverage@1000"]) == 2
    assert "catalogue" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(first), "--compare", str(second), str(first)]) == 2
    assert "--compare: each model file can be compared once" in capsys.readouterr().err
