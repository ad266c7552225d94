"""A 3-fold per-user GridSearchCV of HybridBPR on MovieLens, with the held-out scores of the refit model.

The training part of an 80/20 per-user split is searched with
``PerUserKFold(3)``; the best candidate (by NDCG@10) is refit on it and
scored on the held-out 20 %.

Examples
--------
python benchmarks/grid_search.py --n-jobs 2
python benchmarks/grid_search.py --grid '{"loss": ["bpr"], "alpha": [0.003, 0.01, 0.03]}'
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV

from skbpr import HybridBPR, __version__
from skbpr.datasets import load_movielens
from skbpr.metrics import evaluate, make_ranking_scorer
from skbpr.model_selection import PerUserKFold, train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts' shared helpers, when loaded by path
from _timing import load_text, timed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METRICS = ["ndcg@10", "precision@10", "recall@10", "auc"]
DEFAULT_GRID = {"loss": ["bpr", "warp"], "item_features_mode": ["identity", "both"]}


def markdown(search: GridSearchCV) -> str:
    """One row per candidate: mean ± std over folds of each metric, and mean fit seconds."""
    res = search.cv_results_
    keys = list(dict.fromkeys(k for params in res["params"] for k in params))  # a grid or a list of grids
    head = "| " + " | ".join(keys + METRICS + ["fit s", "rank"]) + " |"
    lines = [head, "|" + "---|" * (len(keys) + len(METRICS) + 2)]
    for i, params in enumerate(res["params"]):
        cells = [str(params.get(k, "")) for k in keys]
        cells += [f"{res[f'mean_test_{m}'][i]:.3f} ± {res[f'std_test_{m}'][i]:.3f}" for m in METRICS]
        cells += [f"{res['mean_fit_time'][i]:.1f}", str(res["rank_test_ndcg@10"][i])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> str:
    """CPU model, core count and torch build, for the record."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"{model}, {os.cpu_count()} cores, torch {torch.__version__} ({threads} threads in the parent)"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--data-home", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--grid", type=json.loads, default=DEFAULT_GRID, help="parameter grid as JSON")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "grid_search.json")
    args = parser.parse_args(argv)

    data = load_movielens(args.dataset, data_home=args.data_home, download=False)
    train, test = train_test_split(data, test_size=0.2, random_state=args.seed)
    search = GridSearchCV(
        HybridBPR(n_components=args.factors, n_negatives=1, epochs=args.epochs, random_state=args.seed),
        args.grid,
        cv=PerUserKFold(3, random_state=args.seed),
        scoring={m: make_ranking_scorer(m) for m in METRICS},
        refit="ndcg@10",
        n_jobs=args.n_jobs,
    )
    with timed() as timing:
        search.fit(train)
    seconds = timing.seconds
    held_out = evaluate(search.best_estimator_, test, metrics=METRICS)
    table = markdown(search)
    print(table)
    print(f"\nbest {search.best_params_}; held-out " + ", ".join(f"{k} {v:.3f}" for k, v in held_out.items()))
    print(
        f"search wall time {seconds:.0f} s with n_jobs={args.n_jobs} (refit {search.refit_time_:.0f} s; "
        f"{load_text(timing.load)})"
    )
    print(f"machine: {machine()}")
    result = {
        "dataset": args.dataset,
        "grid": args.grid,
        "epochs": args.epochs,
        "factors": args.factors,
        "n_jobs": args.n_jobs,
        "machine": machine(),
        "skbpr": __version__,
        "cv_results": {
            k: (v.tolist() if isinstance(v, np.ndarray) and v.dtype != object else [str(x) for x in v])
            for k, v in search.cv_results_.items()
        },
        "best_params": search.best_params_,
        "held_out": held_out,
        "search_seconds": seconds,
        "search_load": timing.load,
        "refit_seconds": search.refit_time_,
        "markdown": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
