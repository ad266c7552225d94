"""How far the compiled kernel and the torch engine drift apart, next to how far rounding alone moves a fit.

For each optimiser and learning rate, on a synthetic 100 users x 60 items set
(1000 positives, ``make_interactions`` seed 0), ``batch_size=1``, 16
factors, seed 0: the largest difference of the predictions (every user x
every item) between a fit on the kernel and the same fit on torch, and
between two torch fits whose initial weights are one float32 ulp apart
(``init_std`` 0.1 and the next float32 above it), after each epoch count.
Where the second column is as large as the first, the engines differ by no
more than float rounding does, amplified by the training itself.

python benchmarks/engine_agreement.py --json engine_agreement.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from skbpr import HybridBPR
from skbpr.datasets import make_interactions


def predictions(model: HybridBPR) -> np.ndarray:
    return model.user_embeddings_ @ model.item_embeddings_.T


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    data = make_interactions(100, 60, 1000, random_state=0)
    nudged = float(np.nextafter(np.float32(0.1), np.float32(1)))
    rows = []
    print(
        "| optimizer | learning_rate | epochs | kernel vs torch | torch vs torch, 1 ulp apart |\n|---|---|---|---|---|"
    )
    for optimizer in ("adam", "adagrad"):
        for lr in (0.01, 0.1):
            for epochs in args.epochs:
                params = dict(
                    optimizer=optimizer, learning_rate=lr, batch_size=1, epochs=epochs, n_components=16,
                    random_state=0, n_threads=1, init_std=0.1,
                )  # fmt: skip
                native = predictions(HybridBPR(backend="native", **params).fit(data))
                torch_ = predictions(HybridBPR(backend="torch", **params).fit(data))
                apart = predictions(HybridBPR(backend="torch", **dict(params, init_std=nudged)).fit(data))
                row = {
                    "optimizer": optimizer,
                    "learning_rate": lr,
                    "epochs": epochs,
                    "engines": float(np.abs(native - torch_).max()),
                    "one_ulp": float(np.abs(apart - torch_).max()),
                }
                rows.append(row)
                print(f"| {optimizer} | {lr} | {epochs} | {row['engines']:.2g} | {row['one_ulp']:.2g} |", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(rows, out, indent=2)


if __name__ == "__main__":
    main()
