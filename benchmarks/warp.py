"""WARP: what matters to reach LightFM's WARP, an ablation on MovieLens 100K and Last.fm.

Protocol of ``benchmarks/movielens.py``: MovieLens 100K ratings >= 4 and
every Last.fm listen are positives; each user's positives are split 80/20 at
random (one split per seed); every item is ranked for every test user, the
user's training positives removed; NDCG@10 averaged over test users; 64
factors and the same thread count for every system, identity features.

Rows: ``skbpr warp`` at its own defaults (``HybridBPR(loss="warp")``), the
former defaults (the general ones) and the best former setting, beside
LightFM's WARP at lr 0.01 x 100 epochs and lr 0.05 x 50 epochs (when
``lightfm`` imports), on ``--seeds``; then the ablation, on
``--ablation-seeds``: the defaults with one setting changed per row (``-``
rows put back a former value or try another). Prints a markdown table (mean
± std over seeds) per data set and writes ``benchmarks/results/warp.json``.

Examples
--------
python benchmarks/warp.py                                   # both sets, every row
python benchmarks/warp.py --datasets ml-100k --seeds 0 --configs "skbpr warp" "lightfm lr0.01 x100"
python benchmarks/warp.py --datasets lastfm --out a.json    # one set per process, then:
python benchmarks/warp.py --merge a.json b.json             # one table and JSON from several runs
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from skbpr import HybridBPR, __version__
from skbpr.metrics import evaluate, evaluate_scores
from skbpr.model_selection import train_test_split
from skbpr.training.defaults import loss_defaults

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts' shared helpers, when loaded by path
from _timing import load_text, mark, timed, worst  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_HOME = ROOT.parent / "shared" / "data"
METRICS = ["ndcg@10", "precision@10", "recall@10"]
# The settings WARP trained with before it had its own defaults (the general ones).
FORMER = {
    "learning_rate": 0.1,
    "alpha": 0.01,
    "init_std": 0.1,
    "batch_size": 4096,
    "initial_accumulator": 0.0,
    "max_sampled": 10,
}

# name -> HybridBPR parameters besides loss="warp", n_components and random_state
SKBPR_CONFIGS: dict[str, dict] = {
    "skbpr warp": {},
    "former defaults": FORMER,
    "former, lr 0.03 alpha 0.1": {**FORMER, "learning_rate": 0.03, "alpha": 0.1},
}
ABLATION: dict[str, dict] = {
    "- batches of 4096 (lr 0.1, accumulators from 0)": {
        "batch_size": 4096,
        "learning_rate": 0.1,
        "initial_accumulator": 0.0,
    },
    "- accumulators from 0": {"initial_accumulator": 0.0},
    "- init_std 0.1": {"init_std": 0.1},
    "- alpha 0.01": {"alpha": 0.01},
    "- max_sampled 10": {"max_sampled": 10},
    "- lr 0.05": {"learning_rate": 0.05},
}
LIGHTFM_CONFIGS = {"lightfm lr0.01 x100": (0.01, 100), "lightfm lr0.05 x50": (0.05, 50)}


def load(dataset: str, data_home: Path):
    """The data set as an Interactions container (identity features only are used)."""
    if dataset == "lastfm":
        from skbpr.datasets import load_lastfm

        return load_lastfm(data_home=data_home, user_features=False, item_features=False)
    from skbpr.datasets import load_movielens

    return load_movielens(dataset, data_home=data_home, download=False)


def fit_skbpr(params: dict, train, test, seed: int, threads: int) -> tuple[dict, object]:
    """HybridBPR(loss="warp") with ``params`` on identity features: metrics and the fit's timing (and load)."""
    model = HybridBPR(
        n_components=64, loss="warp", user_features_mode="identity", item_features_mode="identity",
        random_state=seed, n_threads=threads, **params,
    )  # fmt: skip
    with timed() as timing:
        model.fit(train)
    return evaluate(model, test, metrics=METRICS), timing


def fit_lightfm(lr: float, epochs: int, train, test, seed: int, threads: int) -> tuple[dict, object]:
    """LightFM's WARP (its defaults otherwise: Adagrad, max_sampled 10, no L2): metrics and the fit's timing."""
    from lightfm import LightFM

    model = LightFM(no_components=64, loss="warp", learning_rate=lr, random_state=seed)
    with timed() as timing:
        model.fit(train.positives.tocoo(), epochs=epochs, num_threads=threads)
    users = torch.as_tensor(model.user_embeddings)
    items = torch.as_tensor(model.item_embeddings)
    bias = torch.as_tensor(model.item_biases)

    def score(rows: torch.Tensor) -> torch.Tensor:
        return users.index_select(0, rows) @ items.T + bias

    return evaluate_scores(score, test.positives, exclude=train.positives, metrics=METRICS), timing


def run(args: argparse.Namespace) -> list[dict]:
    """Every requested row on every data set and seed."""
    torch.set_num_threads(args.threads)
    lightfm = importlib.util.find_spec("lightfm") is not None
    rows = []
    for dataset in args.datasets:
        data = load(dataset, args.data_home)
        for seed in sorted(set(args.seeds) | set(args.ablation_seeds)):
            train, test = train_test_split(data, test_size=0.2, random_state=seed)
            for name in args.configs:
                if seed not in (args.ablation_seeds if name in ABLATION else args.seeds):
                    continue
                if name in LIGHTFM_CONFIGS:
                    if not lightfm:
                        print(f"# {name}: lightfm does not import, skipped", file=sys.stderr)
                        continue
                    scores, timing = fit_lightfm(*LIGHTFM_CONFIGS[name], train, test, seed, args.threads)
                else:
                    params = {**SKBPR_CONFIGS, **ABLATION}[name]
                    scores, timing = fit_skbpr(params, train, test, seed, args.threads)
                row = {"dataset": dataset, "system": name, "seed": seed, **scores, "fit_s": timing.seconds}
                row["fit_load"] = timing.load
                rows.append(row)
                print(
                    f"{dataset} seed {seed} {name:>48}: ndcg@10 {row['ndcg@10']:.4f} fit {timing.seconds:.1f}s "
                    f"({load_text(timing.load)})",
                    file=sys.stderr,
                    flush=True,
                )
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds per (data set, system), in first-seen order."""
    out = []
    for dataset, system in dict.fromkeys((r["dataset"], r["system"]) for r in rows):
        group = [r for r in rows if r["dataset"] == dataset and r["system"] == system]
        entry = {"dataset": dataset, "system": system, "n_seeds": len(group), "seeds": [r["seed"] for r in group]}
        for key in [*METRICS, "fit_s"]:
            values = np.array([r[key] for r in group], dtype=float)
            entry[key], entry[f"{key}_std"] = float(values.mean()), float(values.std())
        entry["fit_load"] = worst(r.get("fit_load") for r in group)
        out.append(entry)
    return out


def markdown(summary: list[dict]) -> str:
    """One markdown table per data set: NDCG@10, P@10 and R@10 (mean ± std over seeds) and fit seconds."""
    parts = []
    for dataset in dict.fromkeys(e["dataset"] for e in summary):
        lines = [f"{dataset}:", "", "| WARP | NDCG@10 | P@10 | R@10 | fit s |", "|---|---|---|---|---|"]
        entries = [e for e in summary if e["dataset"] == dataset]
        order = [*SKBPR_CONFIGS, *LIGHTFM_CONFIGS, *ABLATION]
        entries.sort(key=lambda e: order.index(e["system"]) if e["system"] in order else len(order))
        for e in entries:
            cells = [f"{e[m]:.3f} ± {e[m + '_std']:.3f}" for m in METRICS]
            seeds = ", ".join(map(str, e["seeds"]))
            name = e["system"] + (f" (seed{'s' * (e['n_seeds'] > 1)} {seeds})" if e["system"] in ABLATION else "")
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {e['fit_s']:.1f} |")
        parts.append("\n".join(lines))
    return mark("\n\n".join(parts), [e.get("fit_load") for e in summary])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["ml-100k", "lastfm"], help="ml-100k, ml-1m... or lastfm")
    parser.add_argument("--data-home", type=Path, default=DEFAULT_DATA_HOME)
    parser.add_argument("--configs", nargs="+", default=[*SKBPR_CONFIGS, *LIGHTFM_CONFIGS, *ABLATION])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--ablation-seeds", nargs="+", type=int, default=[0], help="seeds of the ablation rows")
    parser.add_argument("--merge", nargs="+", type=Path, default=None, help="combine the rows of these results")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "warp.json")
    args = parser.parse_args(argv)
    known = [*SKBPR_CONFIGS, *LIGHTFM_CONFIGS, *ABLATION]
    unknown = [c for c in args.configs if c not in known]
    if unknown:
        parser.error(f"unknown --configs {unknown}; choose from {known}")
    if args.merge:
        parts = [json.loads(path.read_text()) for path in args.merge]
        rows = [row for part in parts for row in part["rows"]]
        args.datasets = list(dict.fromkeys(d for part in parts for d in part["datasets"]))
        args.seeds = sorted({s for part in parts for s in part["seeds"]})
        args.ablation_seeds = sorted({s for part in parts for s in part.get("ablation_seeds", [])})
    else:
        rows = run(args)
    summary = summarise(rows)
    table = markdown(summary)
    print(table)
    result = {
        "datasets": args.datasets,
        "seeds": args.seeds,
        "ablation_seeds": args.ablation_seeds,
        "factors": 64,
        "threads": args.threads,
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
        "skbpr": __version__,
        "warp_defaults": loss_defaults("warp"),
        "rows": rows,
        "summary": summary,
        "markdown": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
