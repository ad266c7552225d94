"""Cold start: ranking items or users that training never saw, from their features alone.

Protocol
--------
* Item cold start: 20 % of the catalogue (every item, liked or not) is held
  out with all its interactions (positives and implicit negatives). Models
  train on the other items; then, for every user, the held-out items alone
  are ranked from their feature rows (a user's training positives are not
  among them). Relevant: the user's positives among the held-out items.
* User cold start: 20 % of the users are held out with all their
  interactions. Models train on the others; each held-out user is scored
  from their feature row against the full catalogue (they have no training
  positive to remove). Relevant: all of the user's positives.
* Data: MovieLens 100K (ratings >= 4 positive) with genres, then genres +
  release decade + title words, for items; age group, gender, occupation,
  then + zip region, for users. Last.fm HetRec 2k (every listen a positive,
  play counts ignored) with friends as user features and artist-name words
  as item features (the only artist side data in this copy).
* Systems, each on the same split and the same feature matrices:
  random scores; popularity where it is honest (user cold start: item
  counts among the training users); popularity by feature (item cold
  start: the mean training count of the training items sharing each of the
  item's features; user cold start: each item's share of positives among
  the training users sharing each of the user's features; both averaged
  over the row's features); skbpr ``HybridBPR`` with its defaults and the
  feature mode ``features`` (features alone) or ``both`` (features plus an
  identity column; a cold row has no identity column of its own and is
  scored from its features); LightFM WARP at its usual settings (learning
  rate 0.05, 50 epochs) with the features alone or with identity features
  added (LightFM's default when it builds its own matrices), a cold row's
  identity part left at zero.
* 64 factors, 2 threads, split and model seeds 0, 1, 2; recall@10, NDCG@10
  and AUC over the candidates, averaged over the users with a relevant
  candidate; mean and standard deviation over seeds.

Rows with no feature at all get one ``<none>`` feature column (ml-100k's
genres cover every movie; artist-name words do not) so that features-only
models can represent them.

Examples
--------
python benchmarks/cold_start.py                       # every set, 3 seeds
python benchmarks/cold_start.py --sets ml-item --seeds 0
python benchmarks/cold_start.py --sets synthetic-item synthetic-user --seeds 0   # no data needed
python benchmarks/cold_start.py --sets lastfm-user --variants "friends (L1 rows)" \
    --systems "skbpr both" "skbpr both alpha=0" "skbpr both warp" "lightfm features+identity" \
    --out benchmarks/results/cold_start_friends.json   # other feature sets, skbpr without L2 or with WARP
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import re
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import sklearn.preprocessing
import torch

from skbpr import HybridBPR, Interactions, __version__
from skbpr.metrics import evaluate_scores

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts' shared helpers, when loaded by path
from _timing import load_text, machine_load, mark, worst  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_HOME = ROOT.parent / "shared" / "data"
METRICS = ["recall@10", "ndcg@10", "auc"]
HOLD_OUT = 0.2
LIGHTFM = {"loss": "warp", "learning_rate": 0.05, "epochs": 50}
SETS = ("ml-item", "ml-user", "lastfm-user", "lastfm-item", "synthetic-item", "synthetic-user")
SYSTEMS = (
    "random",
    "popularity",
    "popularity by feature",
    "skbpr features",
    "skbpr both",
    "lightfm features",
    "lightfm features+identity",
)
# not run by default: skbpr without its L2 penalty, as LightFM runs by default (item_alpha = user_alpha = 0),
# and skbpr with LightFM's loss
EXTRA_SYSTEMS = ("skbpr features alpha=0", "skbpr both alpha=0", "skbpr features warp", "skbpr both warp")


@dataclass
class Problem:
    """One cold-start task: training data, the cold rows' features and what they must retrieve."""

    name: str
    side: str  # "item" or "user": which side is cold
    features: str  # description of the feature set
    train: Interactions  # binary positives; features only on the cold side
    cold_features: sp.csr_matrix  # cold rows x feature columns
    test: sp.csr_matrix  # item cold: users x cold items; user cold: cold users x items


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def with_none_column(features: sp.csr_matrix, names: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """Add a ``<none>`` column set on the rows that have no feature (if any)."""
    features = sp.csr_matrix(features, dtype=np.float32)
    empty = (np.diff(features.indptr) == 0).astype(np.float32)
    if not empty.any():
        return features, names
    column = sp.csr_matrix(empty[:, None])
    return sp.hstack([features, column], format="csr"), np.append(names, "<none>")


def name_words(titles: np.ndarray, min_items: int = 2) -> tuple[sp.csr_matrix, np.ndarray]:
    """Lower-cased words of each artist name kept when at least ``min_items`` artists share them."""
    words = [sorted(set(re.findall(r"[^\W_]+", str(t).lower()))) for t in titles]
    rows = np.repeat(np.arange(len(words)), [len(w) for w in words])
    flat = np.array([w for ws in words for w in ws], dtype=object)
    vocab, codes, counts = np.unique(flat, return_inverse=True, return_counts=True)
    keep = counts[codes] >= min_items
    kept_vocab, new_codes = np.unique(codes[keep], return_inverse=True)
    matrix = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (rows[keep], new_codes)), shape=(len(words), kept_vocab.size)
    )
    return matrix, np.array([f"word={vocab[c]}" for c in kept_vocab], dtype=object)


def load_set(name: str, data_home: Path, variant: str, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix, str]:
    """Binary positives, the cold side's features and their description."""
    if variant.endswith(L1):
        positives, features, _ = load_set(name, data_home, variant[: -len(L1)], seed)
        features = sklearn.preprocessing.normalize(features, norm="l1", axis=1).astype(np.float32)
        return positives, sp.csr_matrix(features), f"{variant} ({features.shape[1]} columns)"
    if name.startswith("synthetic"):
        from skbpr.datasets import make_interactions

        data = make_interactions(
            600, 400, 20000, n_user_features=20, n_item_features=20, n_informative_features=10, noise=0.2,
            random_state=seed,
        )  # fmt: skip
        side = name.split("-")[1]
        features = data.item_features if side == "item" else data.user_features
        return data.positives, sp.csr_matrix(features), f"synthetic ({features.shape[1]} columns)"
    if name.startswith("ml"):
        from skbpr.datasets import load_movielens

        if name == "ml-item":
            data = load_movielens("ml-100k", data_home=data_home, download=False, item_features=variant)
            features, names = data.item_features, data.item_feature_names
        else:
            data = load_movielens("ml-100k", data_home=data_home, download=False, user_features=variant)
            features, names = data.user_features, data.user_feature_names
    else:
        from skbpr.datasets import load_lastfm

        data = load_lastfm(data_home=data_home)
        if name == "lastfm-user":
            features, names = data.user_features, data.user_feature_names
        else:
            features, names = name_words(data.item_titles)
    features, names = with_none_column(features, names)
    positives = data.positives.copy()
    positives.data[:] = 1.0  # play counts are not used here
    return positives, features, f"{variant} ({features.shape[1]} columns)"


def split(positives: sp.csr_matrix, features: sp.csr_matrix, side: str, seed: int, name: str, desc: str) -> Problem:
    """Hold out ``HOLD_OUT`` of the rows of ``side`` (at random, seeded) with all their interactions."""
    n = positives.shape[1] if side == "item" else positives.shape[0]
    rng = np.random.default_rng(seed)
    cold = np.zeros(n, dtype=bool)
    cold[rng.choice(n, int(round(HOLD_OUT * n)), replace=False)] = True
    matrix = positives.tocsc() if side == "item" else positives.tocsr()
    if side == "item":
        train_pos, test = matrix[:, ~cold].tocsr(), matrix[:, cold].tocsr()
    else:
        train_pos, test = matrix[~cold], matrix[cold]
    coo = train_pos.tocoo()
    features = sp.csr_matrix(features, dtype=np.float32)
    train = Interactions(
        coo.row,
        coo.col,
        n_users=train_pos.shape[0],
        n_items=train_pos.shape[1],
        item_features=features[~cold] if side == "item" else None,
        user_features=features[~cold] if side == "user" else None,
    )
    return Problem(name, side, desc, train, features[cold], sp.csr_matrix(test))


# --------------------------------------------------------------------------
# systems: each returns a dense score matrix (rows: evaluated users, columns: candidates)
# --------------------------------------------------------------------------
def _row_mean(features: sp.csr_matrix, per_feature: np.ndarray, fallback: np.ndarray | float) -> np.ndarray:
    """Mean of ``per_feature`` rows over each row's features (value-weighted); ``fallback`` where none is known."""
    weights = sp.csr_matrix(features, dtype=np.float64)
    total = np.asarray(weights.sum(axis=1)).ravel()
    out = weights @ per_feature
    known = total > 0
    out[known] /= total[known, None] if out.ndim == 2 else total[known]
    out[~known] = fallback
    return out


def popularity_scores(problem: Problem, by_feature: bool) -> np.ndarray:
    positives = problem.train.positives
    counts = np.asarray(positives.sum(axis=0)).ravel()
    if problem.side == "user":
        n_cold = problem.cold_features.shape[0]
        if not by_feature:
            return np.tile(counts, (n_cold, 1))
        users_with = np.asarray(problem.train.user_features.sum(axis=0)).ravel()
        likes = (problem.train.user_features.T @ positives).toarray()  # features x items
        share = np.divide(likes, users_with[:, None], out=np.zeros_like(likes), where=users_with[:, None] > 0)
        return _row_mean(problem.cold_features, share, counts / positives.shape[0])
    if not by_feature:
        raise ValueError("item popularity of held-out items is not available")
    items_with = np.asarray(problem.train.item_features.sum(axis=0)).ravel()
    mean_count = (problem.train.item_features.T @ counts) / np.maximum(items_with, 1)
    mean_count[items_with == 0] = counts.mean()
    item_scores = _row_mean(problem.cold_features, mean_count, counts.mean())
    return np.tile(item_scores, (positives.shape[0], 1))


def skbpr_scores(problem: Problem, mode: str, seed: int, args, **extra) -> tuple[np.ndarray, float]:
    params = {"user_features_mode": "identity", "item_features_mode": "identity", **extra}
    params[f"{problem.side}_features_mode"] = mode
    model = HybridBPR(n_components=args.factors, random_state=seed, n_threads=args.threads, device="cpu", **params)
    start = time.perf_counter()
    model.fit(problem.train)
    seconds = time.perf_counter() - start
    if problem.side == "item":
        users = model.user_representations()
        items, bias = model.item_representations(problem.cold_features)
    else:
        users = model.user_representations(problem.cold_features)
        items, bias = model.item_representations()
    return users @ items.T + bias[None, :], seconds


def lightfm_scores(problem: Problem, identity: bool, seed: int, args) -> tuple[np.ndarray, float]:
    from lightfm import LightFM

    train = problem.train
    features = train.item_features if problem.side == "item" else train.user_features
    cold = problem.cold_features
    if identity:
        n = features.shape[0]
        features = sp.hstack([features, sp.identity(n, dtype=np.float32, format="csr")], format="csr")
        cold = sp.hstack([cold, sp.csr_matrix((cold.shape[0], n), dtype=np.float32)], format="csr")
    model = LightFM(
        no_components=args.factors, loss=LIGHTFM["loss"], learning_rate=LIGHTFM["learning_rate"], random_state=seed
    )
    side_features = {f"{problem.side}_features": features}
    start = time.perf_counter()
    model.fit(train.positives.tocoo(), epochs=LIGHTFM["epochs"], num_threads=args.threads, **side_features)
    seconds = time.perf_counter() - start
    if problem.side == "item":
        _, users = model.get_user_representations()
        bias, items = model.get_item_representations(cold)
    else:
        _, users = model.get_user_representations(cold)
        bias, items = model.get_item_representations()
    return users @ items.T + bias[None, :], seconds  # the user bias does not change a user's ranking


def evaluate(scores: np.ndarray, test: sp.csr_matrix) -> dict[str, float]:
    table = torch.as_tensor(np.ascontiguousarray(scores, dtype=np.float32))
    score_fn: Callable[[torch.Tensor], torch.Tensor] = lambda users: table[users]  # noqa: E731
    return evaluate_scores(score_fn, test, metrics=METRICS)


def run_system(system: str, problem: Problem, seed: int, args) -> tuple[np.ndarray, float] | None:
    if system == "random":
        shape = problem.test.shape
        return np.random.default_rng(10_000 + seed).random(shape), 0.0
    if system == "popularity":
        return None if problem.side == "item" else (popularity_scores(problem, by_feature=False), 0.0)
    if system == "popularity by feature":
        return popularity_scores(problem, by_feature=True), 0.0
    if system.startswith("skbpr"):
        extra = {"alpha": 0.0} if system.endswith("alpha=0") else {"loss": "warp"} if system.endswith("warp") else {}
        return skbpr_scores(problem, system.split()[1], seed, args, **extra)
    if system.startswith("lightfm"):
        if not importlib.util.find_spec("lightfm"):
            return None
        return lightfm_scores(problem, system.endswith("identity"), seed, args)
    raise ValueError(system)


# feature sets per set; " (L1 rows)": each row divided by its sum (what LightFM's Dataset does by default)
VARIANTS = {
    "ml-item": ["genres", "genres+decade+title"],
    "ml-user": ["age+gender+occupation", "age+gender+occupation+zip"],
    "lastfm-user": ["friends", "friends (L1 rows)"],
    "lastfm-item": ["artist-name words"],
    "synthetic-item": ["synthetic"],
    "synthetic-user": ["synthetic", "synthetic (L1 rows)"],
}
L1 = " (L1 rows)"


def run(args: argparse.Namespace) -> list[dict]:
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.sets:
        side = name.split("-")[1]
        for variant in args.variants or VARIANTS[name]:
            for seed in args.seeds:
                positives, features, desc = load_set(name, args.data_home, variant, seed)
                problem = split(positives, features, side, seed, name, desc)
                for system in args.systems:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        result = run_system(system, problem, seed, args)
                    if result is None:
                        continue
                    scores, seconds = result
                    load = machine_load()  # right after the fit (and the scoring of its cold rows)
                    metrics = evaluate(scores, problem.test)
                    n_eval = int((np.diff(problem.test.indptr) > 0).sum())
                    row = {"set": name, "features": desc, "system": system, "seed": seed, **metrics}
                    row.update(fit_s=seconds, n_users_evaluated=n_eval, n_candidates=int(problem.test.shape[1]))
                    row["fit_load"] = load
                    rows.append(row)
                    print(
                        f"{name:>12} {desc:<40} {system:>26} seed {seed}: "
                        + " ".join(f"{m} {metrics[m]:.4f}" for m in METRICS)
                        + f" fit {seconds:.1f}s ({load_text(load)})",
                        file=sys.stderr,
                        flush=True,
                    )
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds per (set, features, system), in first-seen order."""
    out = []
    keys = dict.fromkeys((r["set"], r["features"], r["system"]) for r in rows)
    for key in keys:
        group = [r for r in rows if (r["set"], r["features"], r["system"]) == key]
        entry = dict(zip(("set", "features", "system"), key, strict=True))
        entry["n_seeds"] = len(group)
        for metric in [*METRICS, "fit_s"]:
            values = np.array([r[metric] for r in group], dtype=float)
            entry[metric], entry[f"{metric}_std"] = float(values.mean()), float(values.std())
        entry["n_users_evaluated"] = group[0]["n_users_evaluated"]
        entry["n_candidates"] = group[0]["n_candidates"]
        entry["fit_load"] = worst(r.get("fit_load") for r in group)
        out.append(entry)
    return out


TITLES = {
    "ml-item": "MovieLens 100K, item cold start (20 % of movies held out; candidates: the held-out movies)",
    "ml-user": "MovieLens 100K, user cold start (20 % of users held out; candidates: every movie)",
    "lastfm-user": "Last.fm 2k, user cold start (20 % of users held out; candidates: every artist)",
    "lastfm-item": "Last.fm 2k, item cold start (20 % of artists held out; candidates: the held-out artists)",
    "synthetic-item": "synthetic, item cold start",
    "synthetic-user": "synthetic, user cold start",
}


def markdown(summary: list[dict]) -> str:
    """One table per set: mean ± std over seeds."""
    parts = []
    for name in dict.fromkeys(e["set"] for e in summary):
        group = [e for e in summary if e["set"] == name]
        lines = [
            f"**{TITLES[name]}**",
            "",
            "| features | system | recall@10 | NDCG@10 | AUC | fit s |",
            "|---|---|---|---|---|---|",
        ]
        for e in group:
            cells = [f"{e[m]:.3f} ± {e[m + '_std']:.3f}" for m in METRICS]
            lines.append(f"| {e['features']} | {e['system']} | " + " | ".join(cells) + f" | {e['fit_s']:.1f} |")
        parts.append("\n".join(lines))
    return mark("\n\n".join(parts), [e.get("fit_load") for e in summary])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS[:4]), choices=SETS)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS + EXTRA_SYSTEMS)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=None,
        help="feature sets to run instead of each set's own (e.g. 'genres (L1 rows)'; one set at a time)",
    )
    parser.add_argument("--data-home", type=Path, default=DEFAULT_DATA_HOME)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cold_start.json")
    args = parser.parse_args(argv)
    if args.variants and len(args.sets) != 1:
        parser.error("--variants applies to one set at a time: give --sets exactly one set")
    start = time.perf_counter()
    rows: list[dict] = []
    for name in args.sets:  # the JSON is rewritten after each set: a long run keeps what it finished
        rows += run(argparse.Namespace(**{**vars(args), "sets": [name]}))
        result = write(rows, args, argv, time.perf_counter() - start)
    print(result["markdown"])
    return result


def write(rows: list[dict], args: argparse.Namespace, argv: list[str] | None, seconds: float) -> dict:
    """Summarise ``rows`` and write them with the run's settings to ``args.out``."""
    summary = summarise(rows)
    table = markdown(summary)
    result = {
        "command": "python benchmarks/cold_start.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "hold_out": HOLD_OUT,
        "seeds": args.seeds,
        "factors": args.factors,
        "threads": args.threads,
        "lightfm": LIGHTFM,
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
        "skbpr": __version__,
        "wall_s": seconds,
        "rows": rows,
        "summary": summary,
        "markdown": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
