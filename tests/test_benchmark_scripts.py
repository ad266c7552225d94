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

import pytest

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
    loaded = {name: _script(name) for name in ("movielens", "warp")}
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
