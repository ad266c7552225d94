"""Memory per million users and per million items: the model's tables and a fit's peak resident memory.

Each configuration is fitted for one epoch in a fresh process (64 factors,
identity features, Adagrad, the default optimiser), with the number of
positives held fixed, so that the difference between two sizes is the cost
of the extra rows alone. Reported per configuration: the bytes of the fitted
model's weight tables (``model_.user_weight`` and ``model_.item_weight``)
and the peak resident memory of the whole process (data, model, optimiser
state, sampler). The slopes between the two user counts and between the two
item counts are scaled to one million rows.

Examples
--------
python benchmarks/memory_scaling.py                          # about a minute on 2 cores
python benchmarks/memory_scaling.py --users 200000 800000 --items 20000 80000
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(n_users: int, n_items: int, positives: int, factors: int, threads: int) -> dict:
    import torch

    from skbpr import HybridBPR
    from skbpr.datasets import make_interactions

    torch.set_num_threads(threads)
    data = make_interactions(n_users, n_items, positives, n_user_features=0, n_item_features=0, random_state=0)
    model = HybridBPR(
        factors,
        epochs=1,
        random_state=0,
        user_features_mode="identity",
        item_features_mode="identity",
        n_threads=threads,
    ).fit(data)
    tables = model.model_.user_weight.data, model.model_.item_weight.data
    return {
        "n_users": n_users,
        "n_items": n_items,
        "positives": data.n_positives,
        "user_table_bytes": tables[0].nbytes,
        "item_table_bytes": tables[1].nbytes,
        "user_row_bytes": tables[0].nbytes / n_users,
        "item_row_bytes": tables[1].nbytes / n_items,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(n_users: int, n_items: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", str(n_users), str(n_items), "--positives", str(args.positives)]
    cmd += ["--factors", str(args.factors), "--threads", str(args.threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=1800).stdout
    row = json.loads(out.strip().splitlines()[-1])
    print(f"# {row}", file=sys.stderr, flush=True)
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", nargs=2, type=int, default=[100_000, 400_000], help="two user counts")
    parser.add_argument("--items", nargs=2, type=int, default=[20_000, 80_000], help="two item counts")
    parser.add_argument("--base-users", type=int, default=100_000, help="users while the item count varies")
    parser.add_argument("--base-items", type=int, default=20_000, help="items while the user count varies")
    parser.add_argument("--positives", type=int, default=1_000_000, help="positives of every configuration")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", nargs=2, type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "memory_scaling.json")
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(*args.child, args.positives, args.factors, args.threads)))
        return {}
    users = [measure(n, args.base_items, args) for n in args.users]
    items = [measure(args.base_users, n, args) for n in args.items]
    per_user_mb = (users[1]["peak_rss_mb"] - users[0]["peak_rss_mb"]) / (args.users[1] - args.users[0]) * 1e6
    per_item_mb = (items[1]["peak_rss_mb"] - items[0]["peak_rss_mb"]) / (args.items[1] - args.items[0]) * 1e6
    result = {
        "machine": f"{platform.machine()}, {args.threads} threads",
        "factors": args.factors,
        "positives": args.positives,
        "rows": users + items,
        "user_row_bytes": users[0]["user_row_bytes"],
        "item_row_bytes": items[0]["item_row_bytes"],
        "table_mb_per_million_users": users[0]["user_row_bytes"],  # bytes per row x 1e6 / 1e6
        "table_mb_per_million_items": items[0]["item_row_bytes"],
        "peak_rss_mb_per_million_users": per_user_mb,
        "peak_rss_mb_per_million_items": per_item_mb,
    }
    lines = [
        "| rows | weight table per 1M rows | peak RSS of a fit per 1M rows |",
        "|---|---|---|",
        f"| users | {result['table_mb_per_million_users']:.0f} MB | {per_user_mb:.0f} MB |",
        f"| items | {result['table_mb_per_million_items']:.0f} MB | {per_item_mb:.0f} MB |",
    ]
    print("\n".join(lines))
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
