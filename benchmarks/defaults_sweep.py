"""How HybridBPR's defaults were chosen: settings compared on a validation share, never the test split.

Each data set is split as ``benchmarks/movielens.py`` splits it (80/20 per
user, ``random_state=seed``); the 80 % training part is split again 80/20
per user (``random_state=1000 + seed``). Settings fit on the inner 80 % and
are scored on the inner 20 %, so the benchmark's test positives are never
seen. Each setting is a set of HybridBPR parameters on top of its defaults
(identity features, 64 factors, 2 threads); the peers fit the same inner
part at the settings of ``benchmarks/movielens.py``.

Examples
--------
python benchmarks/defaults_sweep.py                                  # the settings below, both data sets
python benchmarks/defaults_sweep.py --dataset lastfm --settings '{"n_negatives": 1}' '{"epochs": 200}'

The row of ``loss="ials"`` (its ``unobserved_weight``, ``alpha`` and
``reg_exponent``) and its feature modes, on the data as the loaders return
it (``--features``: Last.fm with its friends)::

    python benchmarks/defaults_sweep.py --peers --settings '{}' '{"loss": "ials"}' \
        '{"loss": "ials", "unobserved_weight": 0.25}' '{"loss": "ials", "alpha": 2.5}' \
        '{"loss": "ials", "reg_exponent": 1.0, "alpha": 0.02}'
    python benchmarks/defaults_sweep.py --features --peers --settings '{"loss": "ials"}' \
        '{"loss": "ials", "user_features_mode": "both", "item_features_mode": "both"}' \
        '{"loss": "ials", "user_features_mode": "both"}' '{"loss": "ials", "item_features_mode": "both"}'
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import movielens as bench  # noqa: E402  (the sibling benchmark script: same loading and peers)
from _timing import load_text, mark, timed  # noqa: E402

from skbpr import HybridBPR  # noqa: E402
from skbpr.metrics import evaluate, evaluate_scores  # noqa: E402
from skbpr.model_selection import train_test_split  # noqa: E402

METRICS = ["ndcg@10", "auc"]
# the defaults (n_negatives="auto": 16) against one negative per positive, as before
SETTINGS = ['{"n_negatives": 1}', "{}"]


def load(dataset: str, data_home: Path, seed: int, features: bool):
    """The data set as the benchmark loads it, or (``features``) with the features its loader returns by default.

    Only Last.fm differs: the benchmark drops its friends (user features),
    which ``load_lastfm()`` returns; MovieLens always carries its genres and
    demographics.
    """
    if features and dataset == "lastfm":
        from skbpr.datasets import load_lastfm

        return load_lastfm(data_home=data_home)
    return bench.load(dataset, data_home, seed)


def validation_split(dataset: str, data_home: Path, seed: int, features: bool = False):
    """The inner fit / validation parts of the benchmark's training split."""
    data = load(dataset, data_home, seed, features)
    train, _ = train_test_split(data, test_size=0.2, random_state=seed)
    return train_test_split(train, test_size=0.2, random_state=1000 + seed)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", nargs="+", default=["ml-100k", "lastfm"])
    parser.add_argument("--data-home", type=Path, default=bench.DEFAULT_DATA_HOME)
    parser.add_argument("--settings", nargs="+", default=SETTINGS, help="JSON objects of HybridBPR parameters")
    parser.add_argument("--peers", nargs="*", default=["cornac-bpr"], choices=bench.PEERS[1:])
    parser.add_argument(
        "--features",
        action="store_true",
        help="load Last.fm with the friends load_lastfm() returns, to compare feature modes",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=bench.ROOT / "benchmarks" / "results" / "defaults_sweep.json")
    args = parser.parse_args(argv)
    try:
        settings = [json.loads(s) for s in args.settings]
    except json.JSONDecodeError as exc:
        parser.error(f"--settings must be JSON objects: {exc}")
    torch.set_num_threads(args.threads)
    rows = []
    for dataset in args.dataset:
        fit, val = validation_split(dataset, args.data_home, args.seed, args.features)
        for params in settings:
            base = {"user_features_mode": "identity", "item_features_mode": "identity"}
            model = HybridBPR(n_components=64, random_state=args.seed, n_threads=args.threads, **{**base, **params})
            with warnings.catch_warnings(), timed() as timing:
                warnings.filterwarnings("ignore", message=".*interaction weights.*", category=UserWarning)
                warnings.filterwarnings("ignore", message=".*implicit negatives.*", category=UserWarning)
                model.fit(fit)
            scores = evaluate(model, val, metrics=METRICS)
            rows.append(
                {"dataset": dataset, "system": f"skbpr {json.dumps(params)}", **scores, "fit_s": timing.seconds}
            )
            rows[-1]["fit_load"] = timing.load
            print(json.dumps(rows[-1]), load_text(timing.load), file=sys.stderr, flush=True)
        peer_args = argparse.Namespace(factors=64, threads=args.threads)
        for name in args.peers:
            fitted = bench.fit_peer(name, fit, args.seed, peer_args)
            if fitted is None:
                print(f"# {name}: not importable, skipped", file=sys.stderr)
                continue
            score_fn, timing, _ = fitted
            scores = evaluate_scores(score_fn, val.positives, exclude=fit.positives, metrics=METRICS)
            rows.append(
                {"dataset": dataset, "system": name, **scores, "fit_s": timing.seconds, "fit_load": timing.load}
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    lines = ["| data set | system | val NDCG@10 | val AUC | fit s | load (1 min) |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r['dataset']} | {r['system']} | {r['ndcg@10']:.3f} | {r['auc']:.3f} | {r['fit_s']:.1f} | "
        f"{r['fit_load']['load_1m']:.2f}/{r['fit_load']['cores']} |"
        for r in rows
    ]
    print(mark("\n".join(lines), [r["fit_load"] for r in rows]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seed": args.seed, "threads": args.threads, "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
