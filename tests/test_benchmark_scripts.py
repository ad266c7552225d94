"""The benchmark scripts behind the figures in docs/ run to their JSON: a script that breaks is caught here.

Only their cheap paths run: ``movielens.py`` fits on its embedded synthetic
data set, ``warp.py`` joins rows it is given (``--merge``, which fits
nothing). The real runs need the MovieLens and Last.fm files and take hours.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from skbpr.training.defaults import loss_defaults

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def scripts():
    loaded = {name: _script(name) for name in ("movielens", "warp", "_timing")}
    yield loaded
    for module in loaded.values():
        sys.modules.pop(module.__name__, None)


def test_movielens_benchmark_runs_on_the_synthetic_set(scripts, tmp_path, capsys):
    out = tmp_path / "synthetic.json"
    result = scripts["movielens"].main(
        ["--dataset", "synthetic", "--configs", "bpr", "popularity", "--seeds", "0", "--epochs", "1", "--factors",
         "4", "--threads", "1", "--out", str(out)]
    )  # fmt: skip
    assert json.loads(out.read_text())["rows"] == result["rows"]
    row, peer = result["rows"]
    assert row["system"] == "skbpr bpr" and row["seed"] == 0 and 0 < row["ndcg@10"] <= 1
    assert 0 < row["coverage@10"] <= 1 and row["novelty@10"] > 0 and 0 < row["arp@10"] < 1
    assert row["best_peer"] == "popularity" and 0 <= row["p_vs_best_peer"] <= 1 and "p_vs_best_peer" not in peer
    out = capsys.readouterr().out
    assert "| Cov@10 | Nov@10 | ARP@10 |" in out and "| skbpr bpr |" in out
    assert f"| {row['p_vs_best_peer']:.2g} (popularity) |" in out


def test_warp_benchmark_joins_runs_and_records_the_defaults_it_measured(scripts, tmp_path):
    metrics = {"ndcg@10": 0.3, "precision@10": 0.2, "recall@10": 0.1}
    parts = []
    for seed in (0, 1):
        part = tmp_path / f"part-{seed}.json"
        rows = [{"dataset": "ml-100k", "system": "skbpr warp", "seed": seed, **metrics, "fit_s": 1.0 + seed}]
        part.write_text(json.dumps({"datasets": ["ml-100k"], "seeds": [seed], "ablation_seeds": [], "rows": rows}))
        parts.append(str(part))
    out = tmp_path / "warp.json"
    result = scripts["warp"].main(["--merge", *parts, "--out", str(out)])
    written = json.loads(out.read_text())
    assert written["warp_defaults"] == loss_defaults("warp") == result["warp_defaults"]
    (entry,) = written["summary"]
    assert (entry["system"], entry["n_seeds"], entry["fit_s"], entry["fit_s_std"]) == ("skbpr warp", 2, 1.5, 0.5)
    assert "| skbpr warp | 0.300 ± 0.000" in written["markdown"]


def test_ease_is_its_closed_form(scripts):
    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((30, 12)) < 0.3).astype(np.float32))
    weights = scripts["movielens"].fit_ease(X, 5.0).numpy()
    dense = X.toarray().astype(np.float64)
    P = np.linalg.inv(dense.T @ dense + 5.0 * np.eye(12))
    expected = np.eye(12) - P / np.diag(P)[None, :]  # B = I - P diag(1 / diag P)
    np.testing.assert_allclose(np.diag(expected), 0.0, atol=1e-12)
    np.testing.assert_allclose(weights, expected, atol=1e-4)


def _run_peers(scripts, tmp_path, configs):
    out = tmp_path / "peers.json"
    result = scripts["movielens"].main(
        ["--dataset", "synthetic", "--configs", *configs, "--seeds", "0", "1", "--factors", "4", "--threads", "1",
         "--out", str(out)]
    )  # fmt: skip
    assert json.loads(out.read_text())["rows"] == result["rows"]
    return result


def test_movielens_benchmark_runs_the_ease_grid_and_marks_its_best_setting(scripts, tmp_path):
    result = _run_peers(scripts, tmp_path, ["ease", "popularity"])
    summary = {e["system"]: e for e in result["summary"]}
    assert list(summary) == ["ease l50", "ease l200", "ease l500", "ease l1000", "popularity"]
    best = max(scripts["movielens"].EASE, key=lambda name: summary[name]["ndcg@10"])
    assert result["best_of_grids"] == {"ease": best}
    assert f"| **{best}** |" in result["markdown"] and "chosen on the test split" in result["markdown"]
    assert all(0 < e["ndcg@10"] <= 1 and e["n_seeds"] == 2 for e in summary.values())
    # EASE on this set beats popularity, as it does on every set we measure
    assert summary[best]["ndcg@10"] > summary["popularity"]["ndcg@10"]
    for row in result["rows"]:  # every fit time has the load it was taken under beside it
        assert row["fit_s"] >= 0 and set(row["fit_load"]) == {"load_1m", "load_5m", "load_15m", "cores"}
    assert result["markdown"].startswith("Taken ")


def test_movielens_benchmark_runs_the_als_grid_where_implicit_imports(scripts, tmp_path):
    if importlib.util.find_spec("implicit") is None:
        pytest.skip("implicit is not installed (it is in the bench extra)")
    result = _run_peers(scripts, tmp_path, ["implicit-als r10 a1", "implicit-als r100 a40"])
    systems = [e["system"] for e in result["summary"]]
    assert systems == ["implicit-als r10 a1", "implicit-als r100 a40"]
    assert result["best_of_grids"]["implicit-als"] in systems
    assert all(0 < e["ndcg@10"] <= 1 and e["samples_per_s"] is None for e in result["summary"])


def test_a_table_of_times_taken_under_load_says_so_and_stays_out_of_docs(scripts, tmp_path):
    timing = scripts["_timing"]
    quiet = {"load_1m": 1.5, "load_5m": 1.0, "load_15m": 1.0, "cores": 2}
    busy = {"load_1m": 7.25, "load_5m": 6.0, "load_15m": 5.0, "cores": 2}
    assert not timing.overloaded([quiet, None]) and timing.overloaded([quiet, busy])
    assert timing.mark("| t |", [quiet, busy]).startswith("Taken under load 7.25 > 2 cores")
    assert timing.mark("| t |", [quiet]).startswith("Taken at a 1-minute load of at most 1.50 on 2 cores")
    with pytest.raises(SystemExit, match="under load 7.25 > 2 cores"):
        timing.docs_guard(timing.DOCS / "img" / "throughput.png", [busy])
    timing.docs_guard(tmp_path / "throughput.png", [busy])  # outside docs/: written, marked
    timing.docs_guard(timing.DOCS / "img" / "throughput.png", [quiet])
    with timing.timed() as t:
        pass
    assert t.seconds >= 0 and t.load["cores"] == timing.cores() and "cores)" in str(t)
