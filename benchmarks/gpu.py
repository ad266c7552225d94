"""HybridBPR on a GPU: fit seconds, samples per second and NDCG@10 per loss, and agreement with the CPU.

For each loss setting, on the MovieLens 100K protocol split (seed 0, 64
factors): the fit's wall seconds (setup included), positive samples per
second, and NDCG@10, on ``--device`` and on the CPU's torch engine in the
same run; then the largest difference between the predictions of the two
devices' models (same seed: the same draws, so they differ by float
rounding only, amplified over the epochs). A synthetic set of MovieLens 20M's
shape (``--scale`` positives) measures one epoch of each loss at size.

The machine's 1-minute load is printed beside every time.

Examples
--------
python benchmarks/gpu.py --device cuda                    # on a machine with CUDA
python benchmarks/gpu.py --device cpu --scale 200000      # the same script on the CPU, smaller
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
from _timing import machine_load  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IDENTITY = {"user_features_mode": "identity", "item_features_mode": "identity"}
SETTINGS = {
    "bpr, 1 negative": {"n_negatives": 1},
    "bpr (default row, 16 negatives)": {},
    "bpr, 64 shared negatives": {"shared_negatives": 64, "batch_size": 256},
    "softmax (default row)": {"loss": "softmax"},
    "ials (default row)": {"loss": "ials"},
}


def _load() -> float:
    return machine_load()["load_1m"]


def _fit(data, device: str, epochs: int, params: dict) -> tuple[HybridBPR, float]:
    model = HybridBPR(64, epochs=epochs, random_state=0, device=device, backend="torch", **{**IDENTITY, **params})
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    model.fit(data)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return model, time.perf_counter() - start


def movielens_rows(args) -> list[dict]:
    data = load_movielens("ml-100k", data_home=args.data_home, download=False)
    train, test = train_test_split(data, test_size=0.2, random_state=0)
    pairs = np.stack(np.nonzero(test.positives.toarray()), axis=1)[:20000]
    rows = []
    for label, params in SETTINGS.items():
        epochs = 15 if params.get("loss") == "ials" else args.epochs
        row = {"setting": label, "epochs": epochs}
        predictions = {}
        for device in (args.device, "cpu"):
            model, seconds = _fit(train, device, epochs, params)
            ndcg = evaluate(model, test, metrics=["ndcg@10"])["ndcg@10"]
            predictions[device] = model.predict(pairs)
            row[device] = {
                "fit_s": seconds,
                "samples_per_s": train.n_positives * epochs / seconds,
                "ndcg@10": ndcg,
                "load": _load(),
            }
            print(
                f"# {label} on {device}: {seconds:.2f} s, NDCG@10 {ndcg:.4f} (load {row[device]['load']:.2f})",
                file=sys.stderr,
                flush=True,
            )
        row["max_abs_prediction_gap"] = float(np.abs(predictions[args.device] - predictions["cpu"]).max())
        rows.append(row)
    return rows


def scale_rows(args) -> list[dict]:
    data = make_interactions(138_000, 27_000, args.scale, n_user_features=0, n_item_features=0, random_state=0)
    rows = []
    for label, params in SETTINGS.items():
        model, seconds = _fit(data, args.device, 1, params)
        rows.append(
            {
                "setting": label,
                "positives": data.n_positives,
                "epoch_s": seconds,
                "samples_per_s": data.n_positives / seconds,
                "load": _load(),
            }
        )
        print(f"# scale {label}: {seconds:.2f} s for one epoch (load {_load():.2f})", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-home", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the sampled losses (ials: 15 sweeps)")
    parser.add_argument("--scale", type=int, default=5_000_000, help="positives of the synthetic set (0: skip)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu.json")
    args = parser.parse_args(argv)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    print(f"skbpr {__version__}, torch {torch.__version__}, {args.device}: {name}, {os.cpu_count()} CPUs")
    result = {"device": args.device, "device_name": name, "torch": torch.__version__, "cpus": os.cpu_count()}
    result["movielens"] = movielens_rows(args)
    print(f"\n| setting | {args.device} fit s | cpu fit s | {args.device} M samples/s | NDCG@10 | prediction gap |")
    print("|---|---|---|---|---|---|")
    for row in result["movielens"]:
        gpu, cpu = row[args.device], row["cpu"]
        print(
            f"| {row['setting']} | {gpu['fit_s']:.2f} | {cpu['fit_s']:.2f} | {gpu['samples_per_s'] / 1e6:.2f} "
            f"| {gpu['ndcg@10']:.4f} ({cpu['ndcg@10']:.4f} cpu) | {row['max_abs_prediction_gap']:.2e} |"
        )
    if args.scale:
        result["scale"] = scale_rows(args)
        print(f"\n| setting ({args.scale:,} positives, one epoch) | seconds | M samples/s |")
        print("|---|---|---|")
        for row in result["scale"]:
            print(f"| {row['setting']} | {row['epoch_s']:.2f} | {row['samples_per_s'] / 1e6:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
