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
    seconds (evaluation excluded, an evaluation after every epoch) until
    skbpr's NDCG@10 reaches ``--target-ndcg``, beside cornac's fit of its
    best setting (lr 0.01, 400 epochs). ``--ttq-defaults`` times
    ``HybridBPR()`` at its defaults (identity features) instead of one
    negative per positive, and ``--ttq-dataset lastfm`` takes Last.fm.
Contention
    One-negative throughput on MovieLens 100K of skbpr (deterministic and
    lock-free), cornac and implicit BPR, quiet and then with one core kept
    busy by a busy-loop process (not pinned, then pinned to the last core the
    benchmark may use), as when ``GridSearchCV(n_jobs=2)`` runs two fits or
    anything else runs beside a fit. Ratios are to cornac in the same
    condition.
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

Every time is printed with the machine's load beside it and kept with it in
the JSON (``benchmarks/_timing.py``); the table says when it was taken
under a 1-minute load above the core count, and ``--plot`` refuses to write
such timings into ``docs/``.

Examples
--------
python benchmarks/throughput.py --plot docs/img/throughput.png   # everything (about 10 minutes on 2 cores)
python benchmarks/throughput.py --sizes 1000000 --epochs 5       # a quick look
python benchmarks/throughput.py --sections ml-100k quality       # MovieLens only
python benchmarks/throughput.py --device cuda                    # skbpr on a GPU (peers stay on the CPU)
python benchmarks/throughput.py --sections contention --repeats 3   # with and without a busy core
python benchmarks/throughput.py --sections time-to-quality --ttq-defaults --target-ndcg 0.31
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
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

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts' shared helpers, when loaded by path
from _timing import docs_guard, load_text, machine_load, mark, timed  # noqa: E402

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
SECTIONS = ("ml-100k", "quality", "time-to-quality", "scale", "synthetic", "serving", "contention")
CONDITIONS = ("quiet", "one busy core", "one busy core, pinned")
# the systems of the contention section: skbpr's two modes and the peers
CONTENTION = {"skbpr bpr": {}, "skbpr bpr lock-free": {"deterministic": False}}


def _skbpr(data, epochs: int, args, **params) -> tuple[float, dict]:
    """Samples per second of ``epochs`` epochs of HybridBPR on ``data``, setup included, and the load after."""
    model = HybridBPR(64, n_negatives=1, epochs=epochs, random_state=0, n_threads=args.threads, device=args.device)
    model.set_params(**{**IDENTITY, **params})
    with timed() as timing:
        model.fit(data)
    return data.n_positives * epochs / timing.seconds, timing.load


def _implicit(data, epochs: int, args) -> tuple[float, dict] | None:
    if not importlib.util.find_spec("implicit"):
        return None
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    model = BayesianPersonalizedRanking(factors=64, iterations=epochs, num_threads=args.threads, random_state=0)
    with timed() as timing:
        model.fit(data.positives, show_progress=False)
    return data.n_positives * epochs / timing.seconds, timing.load


def _cornac_dataset(positives):
    import cornac

    coo = positives.tocoo()
    return cornac.data.Dataset.build(list(zip(coo.row.tolist(), coo.col.tolist(), [1.0] * coo.nnz, strict=True)))


def _cornac(data, epochs: int, args) -> tuple[float, dict] | None:
    if not importlib.util.find_spec("cornac"):
        return None
    import cornac

    train = _cornac_dataset(data.positives)  # building the data set is not timed
    model = cornac.models.BPR(k=64, max_iter=epochs, learning_rate=0.01, lambda_reg=0.01, seed=0, verbose=False)
    with timed() as timing:
        model.fit(train)
    return data.n_positives * epochs / timing.seconds, timing.load


def _best(fits: list[tuple[float, dict] | None]) -> tuple[float, dict] | None:
    """The fastest of several fits (samples/s, load), ``None`` when the system is not importable."""
    done = [f for f in fits if f is not None]
    return max(done, key=lambda fit: fit[0]) if done else None


def _row(data: str, system: str, fit: tuple[float, dict], **extra) -> dict:
    row = {"data": data, "system": system, "samples_per_s": fit[0], "load": fit[1], **extra}
    label = f"{data} {extra['condition']}" if "condition" in extra else data
    print(f"# {label} {system}: {fit[0] / 1e6:.2f} M/s ({load_text(fit[1])})", file=sys.stderr, flush=True)
    return row


def training_rows(name: str, data, epochs: int, args, variants: bool, skip: tuple[str, ...] = ()) -> list[dict]:
    """One row per system on one data set, with the ratios to the peers."""
    rows = []
    repeats = args.repeats if data.n_positives <= 5_000_000 else 1
    systems = VARIANTS if variants else {k: VARIANTS[k] for k in SCALE_VARIANTS}
    for label, params in systems.items():
        rows.append(_row(name, label, _best([_skbpr(data, epochs, args, **params) for _ in range(repeats)])))
    peers = {}
    for label, fn in (("implicit bpr", _implicit), ("cornac bpr", _cornac)):
        fit = None if label in skip else _best([fn(data, epochs, args) for _ in range(repeats)])
        if fit is not None:
            rows.append(_row(name, label, fit))
            peers[label.split()[0]] = fit[0]
    for row in rows:
        if row["system"].startswith("skbpr"):
            for peer, value in peers.items():
                row[f"ratio_{peer}"] = row["samples_per_s"] / value
    return rows


def busy_core(pinned: bool) -> subprocess.Popen:
    """A process that keeps one core busy (a Python busy loop), pinned to the last core we may use or not."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = f"import os\nos.sched_setaffinity(0, {{{cores[-1]}}})\n" if pinned and cores else ""
    return subprocess.Popen([sys.executable, "-c", pin + "while True:\n    pass\n"])


def contention_rows(data, args) -> list[dict]:
    """One-negative throughput of skbpr's two modes, cornac and implicit, quiet and beside a busy core."""
    rows = []
    for condition in args.conditions:
        busy = None if condition == "quiet" else busy_core(pinned=condition.endswith("pinned"))
        try:
            if busy is not None:
                time.sleep(args.busy_warmup)  # let the scheduler see the busy process
            fits = {
                label: _best([_skbpr(data, args.epochs, args, **params) for _ in range(args.repeats)])
                for label, params in CONTENTION.items()
            }
            fits["cornac bpr"] = _best([_cornac(data, args.epochs, args) for _ in range(args.repeats)])
            fits["implicit bpr"] = _best([_implicit(data, args.epochs, args) for _ in range(args.repeats)])
        finally:
            if busy is not None:
                busy.terminate()
                busy.wait()
        cornac = fits["cornac bpr"]
        for label, fit in fits.items():
            if fit is None:
                print(f"# {label}: not importable, skipped", file=sys.stderr)
                continue
            extra = {"condition": condition, "busy_pid": None if busy is None else busy.pid}
            if cornac is not None and label != "cornac bpr":
                extra["ratio_cornac"] = fit[0] / cornac[0]
            rows.append(_row("ml-100k", label, fit, **extra))
    return rows


def contention_markdown(rows: list[dict]) -> str:
    """The contention rows as a table headed by the load they were taken under."""
    lines = ["| condition | system | samples/s | / cornac | load (1 min) |", "|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['ratio_cornac']:.2f}" if "ratio_cornac" in r else ""
        load = f"{r['load']['load_1m']:.2f}/{r['load']['cores']}"
        lines.append(f"| {r['condition']} | {r['system']} | {r['samples_per_s'] / 1e6:.2f} M | {ratio} | {load} |")
    return mark("\n".join(lines), [r["load"] for r in rows])


def time_to_quality(data, args) -> dict:
    """Training seconds until NDCG@10 >= target on the benchmark's split (seed 0), beside cornac's best fit."""
    train, test = train_test_split(data, test_size=0.2, random_state=0)
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

    model = HybridBPR(64, random_state=0, n_threads=args.threads, device=args.device, callbacks=[watch])
    model.set_params(**IDENTITY, **({} if args.ttq_defaults else {"n_negatives": 1, "epochs": 200}))
    state["start"] = time.perf_counter()
    model.fit(train)
    out = {
        "dataset": args.ttq_dataset,
        "skbpr_params": "HybridBPR() defaults" if args.ttq_defaults else "n_negatives=1, up to 200 epochs",
        "target_ndcg": args.target_ndcg,
        "skbpr_curve": state["curve"],
        "load_after": machine_load(),
    }
    if state["reached"]:
        out["skbpr_epochs"], out["skbpr_s"] = state["reached"]
    if importlib.util.find_spec("cornac"):
        import cornac

        from skbpr.metrics import evaluate_scores

        sys.path.insert(0, str(Path(__file__).parent))
        from movielens import fit_peer

        score_fn, timing, _ = fit_peer("cornac-bpr", train, 0, argparse.Namespace(factors=64, threads=args.threads))
        seconds = out["cornac_s"] = timing.seconds
        out["cornac_load"] = timing.load
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
    rate, load = _skbpr(data, 1, args, deterministic=not args.lock_free)
    return {"size": size, "samples_per_s": rate, "load": load, "peak_rss_gb": _peak_gb(), "lock_free": args.lock_free}


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
    """The training rows as a table headed by the load they were taken under."""
    lines = ["| data | system | samples/s | / implicit | / cornac | load (1 min) |", "|---|---|---|---|---|---|"]
    for r in result["training"]:
        ratios = [f"{r[k]:.2f}" if k in r else "" for k in ("ratio_implicit", "ratio_cornac")]
        load = f"{r['load']['load_1m']:.2f}/{r['load']['cores']}"
        lines.append(
            f"| {r['data']} | {r['system']} | {r['samples_per_s'] / 1e6:.2f} M | " + " | ".join(ratios) + f" | {load} |"
        )
    return mark("\n".join(lines), [r["load"] for r in result["training"]])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1_000_000, 5_000_000, 20_000_000])
    parser.add_argument("--epochs", type=int, default=20, help="epochs on ml-100k (one on the synthetic sets)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many fits per system (sets up to 5M)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--target-ndcg", type=float, default=0.29)
    parser.add_argument(
        "--ttq-defaults", action="store_true", help="time to quality of HybridBPR() at its defaults (not n_negatives=1)"
    )
    parser.add_argument("--ttq-dataset", choices=("ml-100k", "lastfm"), default="ml-100k")
    parser.add_argument(
        "--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS), help="of the contention section"
    )
    parser.add_argument("--busy-warmup", type=float, default=2.0, help="seconds the busy process runs before a fit")
    parser.add_argument("--no-cornac-above", type=int, default=None, help="skip cornac on larger synthetic sets")
    parser.add_argument("--quality-epochs", type=int, default=30, help="epochs of the 3-seed NDCG@10 comparison")
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=SECTIONS,
        default=[s for s in SECTIONS if s != "contention"],
        help="what to run (default: everything but contention)",
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
    ttq = {}
    if "time-to-quality" in run:
        if args.ttq_dataset == "lastfm":
            from skbpr.datasets import load_lastfm

            lastfm = load_lastfm(data_home=args.data_home, user_features=False, item_features=False)
            ttq = time_to_quality(lastfm, args)
        else:
            ttq = time_to_quality(ml100k, args)
    contention = contention_rows(ml100k, args) if "contention" in run else []
    if contention:
        print(contention_markdown(contention))
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
        "contention": contention,
        "load_at_end": machine_load(),
    }
    result["markdown"] = markdown(result)
    if contention:
        result["contention_markdown"] = contention_markdown(contention)
    if rows:
        print(result["markdown"])
    print(json.dumps({k: result[k] for k in ("quality_3_seeds", "scale", "scale_flatness", "serving")}, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    if args.plot is not None:
        docs_guard(args.plot, [r["load"] for r in rows])
        plot(rows, args.plot)
    return result


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


if __name__ == "__main__":
    main()
