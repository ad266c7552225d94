"""Training throughput, time to quality, memory at scale and serving speed, skbpr beside implicit and cornac.

Every ratio is skbpr / peer, measured back to back in one run with the same
thread count and 64 factors; each system's figure is the best of
``--repeats`` fits, which damps the noise of a shared machine for all alike.

Training
    Positive samples per second (each with its negatives), fit wall time
    included, BPR with identity features and uniform negatives: on MovieLens
    100K (``--epochs`` epochs) and on synthetic sets of ml-20m shape (138k
    users x 27k items) of growing size (one epoch). skbpr variants on
    MovieLens: lock-free, genres + identity, implicit and mixed negatives,
    WARP (and lock-free), and the torch backend; the synthetic sets run the
    deterministic and the lock-free modes.
Quality of the lock-free mode
    NDCG@10 on the MovieLens split (seed 0) for random_state 0, 1 and 2, at
    the defaults (``--quality-epochs`` epochs), deterministic and lock-free.
Time to quality
    The MovieLens protocol of ``benchmarks/movielens.py`` (seed 0): training
    seconds (evaluation excluded) until skbpr's NDCG@10 reaches
    ``--target-ndcg``, beside cornac's fit of its best setting (lr 0.01, 400
    epochs).
Scale
    One epoch on each synthetic size in a fresh process: peak resident memory
    of the whole process (data, model, sampler) and samples per second.
Serving
    Full-catalogue evaluation of every ml-100k user, and ``recommend(k=10)``
    for every user of the largest synthetic set next to implicit's batched
    ``recommend`` on the same factors.

skbpr fits here with ``n_negatives=1``, the one negative per positive of the
peers (and HybridBPR's default before its per-loss defaults), so a sample is
the same work for every system.

Examples
--------
python benchmarks/throughput.py --plot docs/img/throughput.png   # everything (about 10 minutes on 2 cores)
python benchmarks/throughput.py --sizes 1000000 --epochs 5       # a quick look
python benchmarks/throughput.py --sections ml-100k quality       # MovieLens only
python benchmarks/throughput.py --device cuda                    # skbpr on a GPU (peers stay on the CPU)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from skbpr import HybridBPR, __version__
from skbpr.datasets import load_movielens, make_interactions
from skbpr.metrics import evaluate
from skbpr.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
ML20M_SHAPE = (138_000, 27_000)
IDENTITY = {"user_features_mode": "identity", "item_features_mode": "identity"}
VARIANTS = {
    "skbpr bpr": {},
    "skbpr bpr lock-free": {"deterministic": False},
    "skbpr bpr lock-free sgd": {"deterministic": False, "optimizer": "sgd"},  # the peers' optimiser
    "skbpr bpr torch backend": {"backend": "torch"},
    "skbpr bpr genres+id": {"item_features_mode": "both"},
    "skbpr bpr implicit": {"negatives": "implicit"},
    "skbpr bpr mixed": {"negatives": "mixed"},
    "skbpr warp": {"loss": "warp"},
    "skbpr warp lock-free": {"loss": "warp", "deterministic": False},
}
SCALE_VARIANTS = ("skbpr bpr", "skbpr bpr lock-free")  # the skbpr rows of the synthetic sets
SECTIONS = ("ml-100k", "quality", "time-to-quality", "scale", "synthetic", "serving")


def _skbpr(data, epochs: int, args, **params) -> float:
    """Samples per second of ``epochs`` epochs of HybridBPR on ``data``, setup included."""
    model = HybridBPR(64, n_negatives=1, epochs=epochs, random_state=0, n_threads=args.threads, device=args.device)
    model.set_params(**{**IDENTITY, **params})
    start = time.perf_counter()
    model.fit(data)
    return data.n_positives * epochs / (time.perf_counter() - start)


def _implicit(data, epochs: int, args) -> float | None:
    if not importlib.util.find_spec("implicit"):
        return None
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    model = BayesianPersonalizedRanking(factors=64, iterations=epochs, num_threads=args.threads, random_state=0)
    start = time.perf_counter()
    model.fit(data.positives, show_progress=False)
    return data.n_positives * epochs / (time.perf_counter() - start)


def _cornac_dataset(positives):
    import cornac

    coo = positives.tocoo()
    return cornac.data.Dataset.build(list(zip(coo.row.tolist(), coo.col.tolist(), [1.0] * coo.nnz, strict=True)))


def _cornac(data, epochs: int, args) -> float | None:
    if not importlib.util.find_spec("cornac"):
        return None
    import cornac

    train = _cornac_dataset(data.positives)  # building the data set is not timed
    model = cornac.models.BPR(k=64, max_iter=epochs, learning_rate=0.01, lambda_reg=0.01, seed=0, verbose=False)
    start = time.perf_counter()
    model.fit(train)
    return data.n_positives * epochs / (time.perf_counter() - start)


def training_rows(name: str, data, epochs: int, args, variants: bool, skip: tuple[str, ...] = ()) -> list[dict]:
    """One row per system on one data set, with the ratios to the peers."""
    rows = []
    repeats = args.repeats if data.n_positives <= 5_000_000 else 1
    systems = VARIANTS if variants else {k: VARIANTS[k] for k in SCALE_VARIANTS}
    for label, params in systems.items():
        rate = max(_skbpr(data, epochs, args, **params) for _ in range(repeats))
        rows.append({"data": name, "system": label, "samples_per_s": rate})
        print(f"# {name} {label}: {rows[-1]['samples_per_s'] / 1e6:.2f} M/s", file=sys.stderr, flush=True)
    peers = {}
    for label, fn in (("implicit bpr", _implicit), ("cornac bpr", _cornac)):
        value = None if label in skip else max(fn(data, epochs, args) or 0 for _ in range(repeats)) or None
        if value is not None:
            rows.append({"data": name, "system": label, "samples_per_s": value})
            peers[label.split()[0]] = value
            print(f"# {name} {label}: {value / 1e6:.2f} M/s", file=sys.stderr, flush=True)
    for row in rows:
        if row["system"].startswith("skbpr"):
            for peer, value in peers.items():
                row[f"ratio_{peer}"] = row["samples_per_s"] / value
    return rows


def time_to_quality(ml100k, args) -> dict:
    """Training seconds until NDCG@10 >= target on the MovieLens split, beside cornac's best fit."""
    train, test = train_test_split(ml100k, test_size=0.2, random_state=0)
    state = {"eval_s": 0.0, "reached": None, "curve": []}

    def watch(estimator, epoch, logs):
        now = time.perf_counter()
        ndcg = evaluate(estimator, test, metrics=["ndcg@10"])["ndcg@10"]
        train_s = now - state["start"] - state["eval_s"]
        state["curve"].append((epoch, train_s, ndcg))
        state["eval_s"] += time.perf_counter() - now
        if ndcg >= args.target_ndcg and state["reached"] is None:
            state["reached"] = (epoch, train_s)
            return True  # stop: the target is reached
        return False

    model = HybridBPR(
        64, n_negatives=1, epochs=200, random_state=0, n_threads=args.threads, device=args.device, callbacks=[watch]
    )
    model.set_params(**IDENTITY)
    state["start"] = time.perf_counter()
    model.fit(train)
    out = {"target_ndcg": args.target_ndcg, "skbpr_curve": state["curve"]}
    if state["reached"]:
        out["skbpr_epochs"], out["skbpr_s"] = state["reached"]
    if importlib.util.find_spec("cornac"):
        import cornac

        from skbpr.metrics import evaluate_scores

        sys.path.insert(0, str(Path(__file__).parent))
        from movielens import fit_peer

        score_fn, seconds, _ = fit_peer("cornac-bpr", train, 0, argparse.Namespace(factors=64, threads=args.threads))
        out["cornac_s"] = seconds
        out["cornac_ndcg"] = evaluate_scores(score_fn, test.positives, exclude=train.positives, metrics=["ndcg@10"])[
            "ndcg@10"
        ]
        out["cornac_version"] = cornac.__version__
        if "skbpr_s" in out:
            out["ratio_cornac"] = out["skbpr_s"] / seconds
    return out


def seed_quality(ml100k, args) -> dict:
    """NDCG@10 on the MovieLens split for 3 seeds, deterministic and lock-free, at the defaults."""
    train, test = train_test_split(ml100k, test_size=0.2, random_state=0)
    out = {}
    for label, deterministic in (("deterministic", True), ("lock-free", False)):
        scores = []
        for seed in range(3):
            model = HybridBPR(64, n_negatives=1, epochs=args.quality_epochs, random_state=seed, n_threads=args.threads)
            model.set_params(deterministic=deterministic, device=args.device, **IDENTITY)
            scores.append(evaluate(model.fit(train), test, metrics=["ndcg@10"])["ndcg@10"])
        out[label] = {"ndcg@10": scores, "min": min(scores), "max": max(scores), "mean": float(np.mean(scores))}
        print(f"# quality {label}: {scores}", file=sys.stderr, flush=True)
    det = out["deterministic"]
    out["lock_free_within_spread"] = (
        det["min"] <= out["lock-free"]["mean"] <= det["max"]
        or abs(out["lock-free"]["mean"] - det["mean"]) <= (det["max"] - det["min"]) / 2
    )
    return out


def scale_child(size: int, args) -> dict:
    """One epoch on ``size`` synthetic positives in this (fresh) process: memory and speed."""
    torch.set_num_threads(args.threads)
    data = make_interactions(*ML20M_SHAPE, size, random_state=0)
    rate = _skbpr(data, 1, args, deterministic=not args.lock_free)
    return {"size": size, "samples_per_s": rate, "peak_rss_gb": _peak_gb(), "lock_free": args.lock_free}


def serving(ml100k, big, args) -> dict:
    """Seconds of full evaluation on ml-100k and of recommend for every user of ``big``."""
    model = HybridBPR(64, n_negatives=1, epochs=1, random_state=0, device=args.device).fit(ml100k)
    start = time.perf_counter()
    evaluate(model, ml100k, metrics=["precision@10", "recall@10", "ndcg@10", "auc"], exclude_train=False)
    out = {"evaluate_ml100k_s": time.perf_counter() - start}
    model = HybridBPR(64, n_negatives=1, epochs=1, random_state=0, device=args.device, **IDENTITY).fit(big)
    users = np.arange(big.n_users)
    start = time.perf_counter()
    model.recommend(users, k=10)
    out["recommend_skbpr_s"] = time.perf_counter() - start
    if importlib.util.find_spec("implicit"):
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        peer = BayesianPersonalizedRanking(factors=64, num_threads=args.threads)  # serving only: factors set below
        items, biases = model.item_representations()
        peer.user_factors = np.hstack([model.user_representations(), np.ones((big.n_users, 1), np.float32)])
        peer.item_factors = np.hstack([items, biases[:, None]]).astype(np.float32)
        start = time.perf_counter()
        peer.recommend(users, big.positives, N=10)
        out["recommend_implicit_s"] = time.perf_counter() - start
        out["recommend_ratio"] = out["recommend_skbpr_s"] / out["recommend_implicit_s"]
    return out


def plot(rows: list[dict], path: Path) -> None:
    """Samples per second against the number of synthetic positives, one line per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for system in dict.fromkeys(r["system"] for r in rows if r["data"].startswith("synthetic")):
        points = sorted((r["size"], r["samples_per_s"]) for r in rows if r["system"] == system and "size" in r)
        ax.plot([p[0] for p in points], [p[1] / 1e6 for p in points], marker="o", label=system)
    ax.set_xscale("log")
    ax.set_xlabel("positives in the synthetic set (138k users x 27k items)")
    ax.set_ylabel("training samples per second (millions)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def markdown(result: dict) -> str:
    lines = ["| data | system | samples/s | / implicit | / cornac |", "|---|---|---|---|---|"]
    for r in result["training"]:
        ratios = [f"{r[k]:.2f}" if k in r else "" for k in ("ratio_implicit", "ratio_cornac")]
        lines.append(f"| {r['data']} | {r['system']} | {r['samples_per_s'] / 1e6:.2f} M | " + " | ".join(ratios) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1_000_000, 5_000_000, 20_000_000])
    parser.add_argument("--epochs", type=int, default=20, help="epochs on ml-100k (one on the synthetic sets)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many fits per system (sets up to 5M)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--target-ndcg", type=float, default=0.29)
    parser.add_argument("--no-cornac-above", type=int, default=None, help="skip cornac on larger synthetic sets")
    parser.add_argument("--quality-epochs", type=int, default=30, help="epochs of the 3-seed NDCG@10 comparison")
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="what to run (default: everything)",
    )
    parser.add_argument("--scale-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--lock-free", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "throughput.json")
    args = parser.parse_args(argv)
    if args.scale_child is not None:
        print(json.dumps(scale_child(args.scale_child, args)))
        return {}
    torch.set_num_threads(args.threads)

    ml100k = load_movielens("ml-100k", data_home=args.data_home, download=False)
    _skbpr(ml100k, 1, args)  # warm-up: the first fit pays one-off costs
    run = set(args.sections)
    rows = training_rows("ml-100k", ml100k, args.epochs, args, variants=True) if "ml-100k" in run else []
    quality = seed_quality(ml100k, args) if "quality" in run else {}
    ttq = time_to_quality(ml100k, args) if "time-to-quality" in run else {}
    if ttq:
        print(f"# time to quality: {json.dumps({k: v for k, v in ttq.items() if k != 'skbpr_curve'})}", file=sys.stderr)

    scale = []
    for size in args.sizes if "scale" in run else []:
        for lock_free in (False, True):
            cmd = [sys.executable, __file__, "--scale-child", str(size), "--threads", str(args.threads)]
            cmd += ["--device", args.device] + (["--lock-free"] if lock_free else [])
            scale.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
            print(f"# scale {size}: {scale[-1]}", file=sys.stderr, flush=True)

    big = None
    for size in args.sizes if {"synthetic", "serving"} & run else []:
        big = make_interactions(*ML20M_SHAPE, size, random_state=0)
        if "synthetic" not in run:
            continue
        skip = ("cornac bpr",) if args.no_cornac_above is not None and size > args.no_cornac_above else ()
        new = training_rows(f"synthetic {size / 1e6:g}M", big, 1, args, variants=False, skip=skip)
        for r in new:
            r["size"] = size
        rows += new
    rates = [s["samples_per_s"] for s in scale if not s["lock_free"]]
    result = {
        "machine": f"{platform.machine()}, {args.threads} threads, torch {torch.__version__}, device {args.device}",
        "skbpr": __version__,
        "epochs": args.epochs,
        "training": rows,
        "quality_3_seeds": quality,
        "time_to_quality": ttq,
        "scale": scale,
        "scale_flatness": min(rates) / max(rates) if rates else None,
        "serving": serving(ml100k, big, args) if big is not None and "serving" in run else {},
    }
    result["markdown"] = markdown(result)
    print(result["markdown"])
    print(json.dumps({k: result[k] for k in ("quality_3_seeds", "scale", "scale_flatness", "serving")}, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    if args.plot is not None:
        plot(rows, args.plot)
    return result


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


if __name__ == "__main__":
    main()
