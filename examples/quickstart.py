"""Quick start: HybridBPR against popularity on a synthetic data set with planted structure.

Run ``python examples/quickstart.py``. It generates users and items with
latent factors, informative features and exposure-based implicit negatives,
holds out 20 % of each user's positives, fits HybridBPR with every loss and
prints precision@10, NDCG@10 and AUC next to a popularity baseline.
"""

from __future__ import annotations

import argparse
import time

from skbpr import HybridBPR, PopularityRecommender
from skbpr.datasets import make_interactions
from skbpr.metrics import evaluate
from skbpr.model_selection import train_test_split

METRICS = ["precision@10", "ndcg@10", "auc"]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--interactions", type=int, default=100000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = make_interactions(
        args.users,
        args.items,
        args.interactions,
        exposure_signal=3.0,  # what a user is shown depends strongly on taste
        popularity_skew=0.5,
        noise=0.25,
        random_state=args.seed,
    )
    train, test = train_test_split(data, test_size=0.2, random_state=args.seed)
    print(
        f"synthetic data: {data.n_users} users, {data.n_items} items, {data.n_positives} positives, "
        f"{data.n_negatives} implicit negatives; 20% of each user's positives held out"
    )
    rows = []
    start = time.perf_counter()
    baseline = PopularityRecommender().fit(train)
    rows.append(
        {"model": "popularity", **evaluate(baseline, test, metrics=METRICS), "fit s": time.perf_counter() - start}
    )
    for loss in ("bpr", "logistic", "hinge", "warp"):
        start = time.perf_counter()
        model = HybridBPR(n_components=32, loss=loss, epochs=args.epochs, random_state=args.seed).fit(train)
        seconds = time.perf_counter() - start
        rows.append({"model": f"HybridBPR({loss})", **evaluate(model, test, metrics=METRICS), "fit s": seconds})
    header = ["model", *METRICS, "fit s"]
    print(" | ".join(f"{h:>20}" for h in header))
    for row in rows:
        print(" | ".join(f"{row[h]:>20.4f}" if isinstance(row[h], float) else f"{row[h]:>20}" for h in header))
    return rows


if __name__ == "__main__":
    main()
