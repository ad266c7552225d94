"""Do interaction weights help? HybridBPR on Last.fm play counts, weights ignored or used as confidences.

Protocol (that of benchmarks/movielens.py): every (user, artist) pair of the
HetRec 2011 Last.fm set is a positive, its play count its weight; each
user's positives are split 80/20 at random (a user with fewer than two keeps
all in train); every artist is scored for every test user, the user's
training artists removed; precision@10, recall@10, NDCG@10 and AUC are
averaged over test users, with binary relevance (the test play counts are
not used in scoring, so every weighting is judged on the same targets).
HybridBPR runs with its defaults and identity features, ``n_components``
factors and ``--threads`` threads; only ``weighting`` changes between rows.

Examples
--------
python benchmarks/weights.py                          # Last.fm, none / log / linear / sqrt, 3 seeds
python benchmarks/weights.py --weightings none log --seeds 0
python benchmarks/weights.py --loss warp
python benchmarks/weights.py --dataset synthetic      # no data files, a smoke run
python benchmarks/weights.py --table                  # the table of the last run's JSON again
python benchmarks/weights.py --speed --out benchmarks/results/weights_speed.json   # the cost of weights
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from skbpr import HybridBPR, Interactions, PopularityRecommender, __version__
from skbpr.metrics import evaluate
from skbpr.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts' shared helpers, when loaded by path
from _timing import load_text, machine_load, timed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_HOME = ROOT.parent / "shared" / "data"
METRICS = ["precision@10", "recall@10", "ndcg@10", "auc"]
# name -> the weighting parameter of HybridBPR
WEIGHTINGS = {"none": "none", "log": "log", "linear": "linear", "sqrt": np.sqrt}


def load(dataset: str, data_home: Path, seed: int) -> Interactions:
    """Last.fm's (user, artist, play count) triples as positives weighted by play count."""
    if dataset == "synthetic":
        from skbpr.datasets import make_interactions

        data = make_interactions(600, 300, 15000, random_state=seed)
        rng = np.random.default_rng(seed)
        plays = np.ceil(rng.pareto(1.2, data.n_positives) * 10).astype(np.float64) + 1
        return Interactions(
            data.pos_users, data.pos_items, pos_values=plays, n_users=data.n_users, n_items=data.n_items
        )
    path = data_home / "hetrec2011-lastfm-2k" / "user_artists.dat"
    events = pd.read_csv(path, sep="\t")
    events.columns = ["user_id", "item_id", "plays"]
    return Interactions.from_frame(events, weight_col="plays")


def run(args: argparse.Namespace) -> list[dict]:
    """Popularity and HybridBPR with each weighting, on every seed; one row per (system, seed)."""
    torch.set_num_threads(args.threads)
    rows = []
    for seed in args.seeds:
        data = load(args.dataset, args.data_home, seed)
        train, test = train_test_split(data, test_size=0.2, random_state=seed)
        systems = ["popularity", *args.weightings] if args.popularity else list(args.weightings)
        for name in systems:
            with timed() as timing:
                model = fit_system(name, train, seed, args)
            seconds = timing.seconds
            scores = evaluate(model, test, metrics=METRICS)
            system = name if name == "popularity" else f"skbpr {args.loss} weighting={name}"
            row = {"system": system, "weighting": name, "seed": seed, **scores, "fit_s": seconds}
            rows.append({**row, "fit_load": timing.load})
            print(
                f"{system:>32} seed {seed}: "
                + " ".join(f"{m} {scores[m]:.4f}" for m in METRICS)
                + f" fit {seconds:.1f}s ({load_text(timing.load)})",
                file=sys.stderr,
                flush=True,
            )
    return rows


def fit_system(name: str, train, seed: int, args: argparse.Namespace):
    """Popularity, or HybridBPR with the weighting ``name``, fitted on ``train``."""
    if name == "popularity":
        model = PopularityRecommender().fit(train.positives.astype(bool).astype(np.float32))
    else:
        model = HybridBPR(
            n_components=args.factors,
            loss=args.loss,
            weighting=WEIGHTINGS[name],
            user_features_mode="identity",
            item_features_mode="identity",
            random_state=seed,
            n_threads=args.threads,
        )
        if args.epochs is not None:
            model.set_params(epochs=args.epochs)
        model.fit(train)
    return model


def speed(args: argparse.Namespace) -> list[dict]:
    """Training samples per second with weights ignored and used (log), best of ``--repeats`` fits of each.

    Fits alternate between the two so that the load of a shared machine hits
    both alike; the compiled kernel's deterministic and lock-free modes.
    """
    torch.set_num_threads(args.threads)
    train, _ = train_test_split(load(args.dataset, args.data_home, 0), test_size=0.2, random_state=0)
    epochs = args.epochs or 20
    out = []
    for deterministic in (True, False):
        best = {"none": np.inf, "log": np.inf}
        for _ in range(args.repeats):
            for weighting in best:
                model = HybridBPR(
                    n_components=args.factors, loss=args.loss, weighting=weighting, epochs=epochs, random_state=0,
                    n_threads=args.threads, backend="native", deterministic=deterministic,
                    user_features_mode="identity", item_features_mode="identity",
                )  # fmt: skip
                with timed() as timing:
                    model.fit(train)
                best[weighting] = min(best[weighting], timing.seconds)
        rates = {w: train.n_positives * epochs / t for w, t in best.items()}
        now = machine_load()
        out.append(
            {
                "deterministic": deterministic,
                "samples_per_s": rates,
                "log_over_none": rates["log"] / rates["none"],
                "load": now,
            }
        )
        print(
            f"{'deterministic' if deterministic else 'lock-free':>13}: none {rates['none'] / 1e6:.2f} M/s, "
            f"log {rates['log'] / 1e6:.2f} M/s, ratio {rates['log'] / rates['none']:.3f} ({load_text(now)})",
            flush=True,
        )
    return out


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds per system, with the change of NDCG@10 against ``none``."""
    out = []
    for system in dict.fromkeys(r["system"] for r in rows):
        group = [r for r in rows if r["system"] == system]
        entry = {"system": system, "weighting": group[0]["weighting"], "n_seeds": len(group)}
        for key in [*METRICS, "fit_s"]:
            values = np.array([r[key] for r in group], dtype=float)
            entry[key] = float(values.mean())
            entry[f"{key}_std"] = float(values.std())
        out.append(entry)
    base = {r["seed"]: r["ndcg@10"] for r in rows if r["weighting"] == "none"}
    for entry in out:
        paired = [
            r["ndcg@10"] / base[r["seed"]] - 1 for r in rows if r["system"] == entry["system"] and r["seed"] in base
        ]
        entry["ndcg@10_vs_none"] = float(np.mean(paired)) if paired and entry["weighting"] != "popularity" else None
    return out


def markdown(summary: list[dict]) -> str:
    """The summary as a markdown table (mean ± std over seeds; fit times, noisy on shared machines, in the JSON)."""
    lines = ["| system | P@10 | R@10 | NDCG@10 | AUC | NDCG@10 vs none |", "|" + "---|" * 6]
    for e in summary:
        cells = [f"{e[m]:.3f} ± {e[m + '_std']:.3f}" for m in METRICS]
        change = "" if e["ndcg@10_vs_none"] is None else f"{100 * e['ndcg@10_vs_none']:+.1f} %"
        lines.append(f"| {e['system']} | " + " | ".join(cells) + f" | {change} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="lastfm", choices=("lastfm", "synthetic"))
    parser.add_argument("--data-home", type=Path, default=DEFAULT_DATA_HOME)
    parser.add_argument("--weightings", nargs="+", default=list(WEIGHTINGS), choices=list(WEIGHTINGS))
    parser.add_argument("--loss", default="bpr", choices=("bpr", "logistic", "hinge", "warp"))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=None, help="override HybridBPR's default epochs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-popularity", dest="popularity", action="store_false")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "weights.json")
    parser.add_argument(
        "--table", action="store_true", help="print the table of the rows already in --out, run nothing"
    )
    parser.add_argument("--speed", action="store_true", help="time training with and without weights instead")
    parser.add_argument("--repeats", type=int, default=5, help="--speed: best of this many fits")
    args = parser.parse_args(argv)
    if args.speed:
        result = {"dataset": args.dataset, "loss": args.loss, "threads": args.threads, "speed": speed(args)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        return result
    if args.table:
        result = json.loads(args.out.read_text())
        result["summary"] = summarise(result["rows"])
        result["markdown"] = markdown(result["summary"])
        print(result["markdown"])
        args.out.write_text(json.dumps(result, indent=2))
        return result
    rows = run(args)
    summary = summarise(rows)
    table = markdown(summary)
    print(table)
    result = {
        "dataset": args.dataset,
        "loss": args.loss,
        "seeds": args.seeds,
        "factors": args.factors,
        "threads": args.threads,
        "epochs": args.epochs,
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
        "skbpr": __version__,
        "rows": rows,
        "summary": summary,
        "markdown": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
