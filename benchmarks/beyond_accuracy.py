"""Time of ``evaluate`` over every MovieLens 100K test user: accuracy alone, then with every beyond-accuracy metric.

The beyond-accuracy metrics (coverage, Gini, ARP, novelty, intra-list
diversity at 10) read the top-10 lists of the ranking pass that the accuracy
metrics already make, so they should add little to it. The model is a
HybridBPR fitted on the benchmark split of ``benchmarks/movielens.py``
(seed 0, ratings >= 4, 80/20 per user); each figure is the best of
``--repeats`` runs, which damps the noise of a shared machine. The target is
under 0.5 s for all users with every metric on 2 cores.

Examples
--------
python benchmarks/beyond_accuracy.py
python benchmarks/beyond_accuracy.py --threads 2 --repeats 7 --out beyond.json
python benchmarks/beyond_accuracy.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from skbpr import HybridBPR, __version__
from skbpr.datasets import load_movielens
from skbpr.metrics import evaluate
from skbpr.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts' shared helpers, when loaded by path
from _timing import load_text, machine_load  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_HOME = ROOT.parent / "shared" / "data"
ACCURACY = ["precision@10", "recall@10", "ndcg@10", "map@10", "hit_rate@10", "mrr", "auc"]
BEYOND = ["coverage@10", "gini@10", "arp@10", "novelty@10", "ild@10"]


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", type=Path, default=DEFAULT_DATA_HOME)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (the timing does not depend on them)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="JSON of the timings")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_movielens("ml-100k", data_home=args.data_home, download=False)
    train, test = train_test_split(data, test_size=0.2, random_state=0)
    model = HybridBPR(
        64,
        epochs=args.epochs,
        random_state=0,
        n_threads=args.threads,
        device=args.device,
        user_features_mode="identity",
        item_features_mode="identity",
    ).fit(train)
    genres = data.item_features
    evaluate(model, test, metrics=ACCURACY + BEYOND, item_vectors=genres)  # warm-up
    n_users = len(evaluate(model, test, metrics=["ndcg@10"], per_user=True))
    timings = {
        "accuracy": best_time(lambda: evaluate(model, test, metrics=ACCURACY), args.repeats),
        "accuracy+beyond (genre ILD)": best_time(
            lambda: evaluate(model, test, metrics=ACCURACY + BEYOND, item_vectors=genres), args.repeats
        ),
        "accuracy+beyond (embedding ILD)": best_time(
            lambda: evaluate(model, test, metrics=ACCURACY + BEYOND), args.repeats
        ),
    }
    load = machine_load()  # right after the timings
    values = evaluate(model, test, metrics=ACCURACY + BEYOND, item_vectors=genres)
    print(f"MovieLens 100K: {n_users} test users x {data.n_items} items, {args.threads} threads, {args.device}")
    print(f"timed at {load_text(load)}")
    print(f"| metrics | seconds (best of {args.repeats}) |")
    print("|---|---|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds:.3f} |")
    print("\n" + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
    result = {
        "n_users": n_users,
        "n_items": data.n_items,
        "threads": args.threads,
        "device": args.device,
        "repeats": args.repeats,
        "seconds": timings,
        "load": load,
        "metrics": values,
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
        "skbpr": __version__,
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
