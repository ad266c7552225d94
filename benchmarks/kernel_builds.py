"""Samples per second of each build of the compiled kernel (baseline, AVX2), with and without huge pages.

One thread and CPU seconds (``time.process_time``) by default, which a shared
machine disturbs less than wall time; each figure is the best of
``--repeats`` rounds, the configurations interleaved within a round. BPR and
WARP, 64 factors, identity features, uniform negatives: MovieLens 100K
(``--epochs`` epochs) and a synthetic set of ml-20m shape (one epoch).

python benchmarks/kernel_builds.py --repeats 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

import skbpr.training.native as native
from skbpr import HybridBPR
from skbpr.datasets import load_movielens, make_interactions

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts' shared helpers, when loaded by path
from _timing import load_text, machine_load, mark  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from skbpr import _kernel

    clock = time.process_time if args.threads == 1 else time.perf_counter
    torch.set_num_threads(args.threads)
    build = {"isa": ""}
    init = native.NativeKernel.__init__

    def forced(self, **kwargs):
        init(self, **kwargs, isa=build["isa"])

    native.NativeKernel.__init__ = forced
    ml = load_movielens("ml-100k", data_home=args.data_home, download=False)
    big = make_interactions(138_000, 27_000, args.size, random_state=0)

    def rate(data, epochs, loss):
        model = HybridBPR(
            64, n_negatives=1, epochs=epochs, random_state=0, n_threads=args.threads, backend="native", loss=loss
        )
        model.set_params(user_features_mode="identity", item_features_mode="identity")
        start = clock()
        model.fit(data)
        return data.n_positives * epochs / (clock() - start)

    rate(ml, 1, "bpr")  # warm-up
    best: dict[tuple, float] = {}
    loads: dict[tuple, dict] = {}  # the load as each system's best fit ended
    for _ in range(args.repeats):
        for isa in _kernel.SUPPORTED_ISAS:
            for huge in (True, False):
                build["isa"] = isa
                np._core.multiarray._set_madvise_hugepage(huge)
                for name, data, epochs in (("ml-100k", ml, args.epochs), (f"synthetic {args.size:,}", big, 1)):
                    for loss in ("bpr", "warp"):
                        key = (name, loss, isa, "huge pages" if huge else "4 KiB pages")
                        value = rate(data, epochs, loss)
                        if value > best.get(key, 0.0):
                            best[key], loads[key] = value, machine_load()
    lines = [f"| data | loss | build | pages | samples/s ({args.threads} thread(s)) | load (1 min) |", "|" + "---|" * 6]
    for key, value in sorted(best.items()):
        lines.append("| " + " | ".join(key) + f" | {value / 1e6:.2f} M | {load_text(loads[key])} |")
    print(mark("\n".join(lines), loads.values()))


if __name__ == "__main__":
    main()
