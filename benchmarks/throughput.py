"""Training throughput and serving speed of skbpr beside implicit and cornac, in one process.

Training: positive samples per second (each with its negative) for one or
more epochs of BPR with identity features and uniform negatives, on
MovieLens 100K and on synthetic sets of ml-20m shape (138k users, 27k
items) of growing size; skbpr variants (genres + identity, implicit and
mixed negatives, WARP) on MovieLens. Serving: full-catalogue evaluation of
every ml-100k user, and ``recommend(k=10)`` for every user of the largest
synthetic set next to implicit's batched ``recommend`` on the same factors.
Ratios are skbpr / peer, measured back to back with the same thread count.

Examples
--------
python benchmarks/throughput.py                          # ml-100k and 1M / 5M / 20M synthetic
python benchmarks/throughput.py --sizes 1000000 --epochs 5
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

from skbpr import HybridBPR, __version__
from skbpr.datasets import load_movielens, make_interactions
from skbpr.metrics import evaluate

ROOT = Path(__file__).resolve().parents[1]
ML20M_SHAPE = (138_000, 27_000)


def _skbpr(data, epochs: int, threads: int, **params) -> float:
    """Samples per second of ``epochs`` epochs of HybridBPR on ``data``."""
    params = {"user_features_mode": "identity", "item_features_mode": "identity", **params}
    model = HybridBPR(64, epochs=epochs, random_state=0, n_threads=threads, **params)
    start = time.perf_counter()
    model.fit(data)
    return data.n_positives * epochs / (time.perf_counter() - start)


def _implicit(data, epochs: int, threads: int) -> float | None:
    if not importlib.util.find_spec("implicit"):
        return None
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    model = BayesianPersonalizedRanking(factors=64, iterations=epochs, num_threads=threads, random_state=0)
    start = time.perf_counter()
    model.fit(data.positives, show_progress=False)
    return data.n_positives * epochs / (time.perf_counter() - start)


def _cornac(data, epochs: int, threads: int) -> float | None:
    if not importlib.util.find_spec("cornac"):
        return None
    import cornac

    coo = data.positives.tocoo()
    train = cornac.data.Dataset.build(list(zip(coo.row.tolist(), coo.col.tolist(), [1.0] * coo.nnz, strict=True)))
    model = cornac.models.BPR(k=64, max_iter=epochs, learning_rate=0.01, lambda_reg=0.01, seed=0, verbose=False)
    start = time.perf_counter()
    model.fit(train)
    return data.n_positives * epochs / (time.perf_counter() - start)


def training_rows(name: str, data, epochs: int, threads: int, variants: bool) -> list[dict]:
    """One row per system on one data set."""
    rows = [{"data": name, "system": "skbpr bpr", "samples_per_s": _skbpr(data, epochs, threads)}]
    if variants:
        for label, params in {
            "skbpr bpr genres+id": {"item_features_mode": "both"},
            "skbpr bpr implicit": {"negatives": "implicit"},
            "skbpr bpr mixed": {"negatives": "mixed"},
            "skbpr warp": {"loss": "warp"},
        }.items():
            rows.append({"data": name, "system": label, "samples_per_s": _skbpr(data, epochs, threads, **params)})
    for label, fn in (("implicit bpr", _implicit), ("cornac bpr", _cornac)):
        value = fn(data, epochs, threads)
        if value is not None:
            rows.append({"data": name, "system": label, "samples_per_s": value})
    return rows


def serving(ml100k, big, threads: int) -> dict:
    """Seconds of full evaluation on ml-100k and of recommend for every user of ``big``."""
    torch.set_num_threads(threads)
    model = HybridBPR(64, epochs=1, random_state=0).fit(ml100k)
    start = time.perf_counter()
    evaluate(model, ml100k, metrics=["precision@10", "recall@10", "ndcg@10", "auc"], exclude_train=False)
    out = {"evaluate_ml100k_s": time.perf_counter() - start}
    model = HybridBPR(64, epochs=1, random_state=0, batch_size=65536).fit(big)
    users = np.arange(big.n_users)
    start = time.perf_counter()
    model.recommend(users, k=10)
    out["recommend_skbpr_s"] = time.perf_counter() - start
    if importlib.util.find_spec("implicit"):
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        peer = BayesianPersonalizedRanking(factors=64, num_threads=threads)  # serving only: factors set below
        items, biases = model.item_representations()
        peer.user_factors = np.hstack([model.user_representations(), np.ones((big.n_users, 1), np.float32)])
        peer.item_factors = np.hstack([items, biases[:, None]]).astype(np.float32)
        start = time.perf_counter()
        peer.recommend(users, big.positives, N=10)
        out["recommend_implicit_s"] = time.perf_counter() - start
        out["recommend_ratio"] = out["recommend_skbpr_s"] / out["recommend_implicit_s"]
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1_000_000, 5_000_000, 20_000_000])
    parser.add_argument("--epochs", type=int, default=20, help="epochs on ml-100k (one on the synthetic sets)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "throughput.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    ml100k = load_movielens("ml-100k", data_home=args.data_home, download=False)
    _skbpr(ml100k, 1, args.threads)  # warm-up: torch's first calls pay one-off costs
    rows = training_rows("ml-100k", ml100k, args.epochs, args.threads, variants=True)
    big = None
    for size in args.sizes:
        big = make_interactions(*ML20M_SHAPE, size, random_state=0)
        rows += training_rows(f"synthetic {size / 1e6:g}M", big, 1, args.threads, variants=False)
        print(f"# synthetic {size / 1e6:g}M done, peak RSS {_peak_gb():.2f} GB", flush=True)
    peers = {(r["data"], r["system"]): r["samples_per_s"] for r in rows}
    for r in rows:
        for peer in ("implicit bpr", "cornac bpr"):
            other = peers.get((r["data"], peer))
            if r["system"].startswith("skbpr") and other:
                r[f"ratio_{peer.split()[0]}"] = r["samples_per_s"] / other
    result = {
        "machine": f"{platform.machine()}, {args.threads} threads, torch {torch.__version__}",
        "skbpr": __version__,
        "epochs": args.epochs,
        "training": rows,
        "serving": serving(ml100k, big, args.threads) if big is not None else {},
        "peak_rss_gb": _peak_gb(),
    }
    lines = ["| data | system | samples/s | / implicit | / cornac |", "|---|---|---|---|---|"]
    for r in rows:
        ratios = [f"{r[k]:.2f}" if k in r else "" for k in ("ratio_implicit", "ratio_cornac")]
        lines.append(f"| {r['data']} | {r['system']} | {r['samples_per_s'] / 1e6:.2f} M | " + " | ".join(ratios) + " |")
    result["markdown"] = "\n".join(lines)
    print(result["markdown"])
    print(json.dumps(result["serving"], indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return result


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


if __name__ == "__main__":
    main()
