"""The MovieLens benchmark protocol, skbpr and its peers side by side, on MovieLens and Last.fm.

Protocol: on MovieLens, ratings >= 4 are positives and lower ratings
implicit negatives; on Last.fm (HetRec 2011, 1,892 users x 17,632 artists)
every listened artist is a positive. Each user's positives are split 80/20
at random (a user with fewer than two keeps all in train); every item is
scored for every test user, the user's training positives removed;
precision@10, recall@10, NDCG@10 and full-catalogue AUC are averaged over
test users, with the catalogue coverage, novelty and average popularity
(ARP) of the same top-10 lists (popularity from the training positives).
On each seed, every HybridBPR configuration's per-user NDCG@10 is tested
against the peer with the best NDCG@10 on that seed (Wilcoxon signed-rank,
Holm-corrected over the HybridBPR rows); the tables show the largest of
these p-values over the seeds. Fit time is wall seconds of training only and throughput is
training positives processed per second (each with its negatives). Every
system runs in this one process with the same thread count. Tables show the
mean ± standard deviation (numpy's, ddof=0) over the seeds; the JSON also
holds the minimum and maximum.

The strongest simple baselines run as grids, one row per setting: implicit's
``AlternatingLeastSquares`` (64 factors, 15 iterations, regularization in
{1, 10, 30, 100} x alpha in {1, 10, 40}, on the binary train matrix, the
protocol's thread count) and EASE (Steck 2019), written here from its closed
form: ``P = (X'X + lambda I)^-1``, ``B = I - P diag(1/diag P)`` (so
``diag(B) = 0``), scores ``X B``, lambda in {50, 200, 500, 1000}, float32 in
torch. The tables mark each grid's best setting per data set: it is chosen
on the test split, which favours these peers.

Every fit time is printed with the machine's load beside it and kept with it
in the JSON (``benchmarks/_timing.py``); a table whose times were taken while
the 1-minute load exceeded the core count says so in its first line.

Examples
--------
python benchmarks/movielens.py                       # ml-100k, all configurations, 3 seeds
python benchmarks/movielens.py --dataset ml-100k lastfm --configs bpr warp popularity cornac-bpr
python benchmarks/movielens.py --configs bpr warp --seeds 0
python benchmarks/movielens.py --dataset synthetic   # no download, a smoke run
python benchmarks/movielens.py --dataset lastfm --seeds 1 --out lastfm-1.json   # one seed per process...
python benchmarks/movielens.py --merge lastfm-0.json lastfm-1.json lastfm-2.json --out lastfm.json  # ...joined
python benchmarks/movielens.py --dataset ml-100k lastfm --configs implicit-als ease   # the two grids
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from skbpr import HybridBPR, PopularityRecommender, __version__
from skbpr.evaluation.compare import paired_p_value
from skbpr.metrics import correct_p_values, evaluate, evaluate_scores, evaluate_scores_per_user
from skbpr.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts' shared helpers, when loaded by path
from _timing import load_text, machine_load, mark, timed, worst  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_HOME = ROOT.parent / "shared" / "data"
METRICS = ["precision@10", "recall@10", "ndcg@10", "auc", "coverage@10", "novelty@10", "arp@10"]

# name -> HybridBPR parameters (besides n_components and random_state) and the data variant.
# "bpr", "logistic", "hinge" and "warp" are each loss with HybridBPR's defaults for it.
SKBPR_CONFIGS: dict[str, dict] = {
    "bpr": {"loss": "bpr"},
    "bpr n_neg1": {"loss": "bpr", "n_negatives": 1},  # the defaults before per-loss defaults
    "bpr unweighted": {"loss": "bpr", "weighting": "none"},  # play counts ignored, as the peers ignore them
    "logistic": {"loss": "logistic"},
    "hinge": {"loss": "hinge"},
    "warp": {"loss": "warp"},
    "warp lr0.1 a0.01": {"loss": "warp", "learning_rate": 0.1, "alpha": 0.01},
    "bpr+implicit": {"loss": "bpr", "negatives": "implicit"},
    "bpr+mixed": {"loss": "bpr", "negatives": "mixed"},
    "bpr+mixed0.1": {"loss": "bpr", "negatives": "mixed", "implicit_ratio": 0.1},
    "bpr+genres": {"loss": "bpr", "item_features_mode": "features"},
    "bpr+genres+id": {"loss": "bpr", "item_features_mode": "both"},
    "warp+genres+id": {"loss": "warp", "item_features_mode": "both"},
    # the all-pairs squared loss at its row of the defaults table (50 sweeps), at 15 sweeps, and with genres
    "ials": {"loss": "ials"},
    "ials 15": {"loss": "ials", "epochs": 15},
    "ials+genres+id": {"loss": "ials", "item_features_mode": "both", "epochs": 15},
}
# name -> (learning rate, epochs) of LightFM; its WARP has no single best setting (lr 0.01 x 100
# epochs wins on MovieLens 100K, lr 0.05 x 50 epochs on Last.fm), so both rows run.
LIGHTFM = {
    "lightfm-bpr": ("bpr", 0.01, 100),
    "lightfm-warp": ("warp", 0.01, 100),
    "lightfm-warp-lr0.05": ("warp", 0.05, 50),
}
# The grids of the strongest simple baselines, one configuration per setting:
# name -> (regularization, alpha) of implicit's ALS, and name -> lambda of EASE.
ALS_ITERATIONS = 15
ALS = {f"implicit-als r{r} a{a}": (float(r), float(a)) for r in (1, 10, 30, 100) for a in (1, 10, 40)}
EASE = {f"ease l{lam}": float(lam) for lam in (50, 200, 500, 1000)}
# --configs names that stand for a whole grid; the table marks each grid's best row.
GRIDS = {"implicit-als": list(ALS), "ease": list(EASE)}
PEERS = ("popularity", "implicit-bpr", "cornac-bpr", *LIGHTFM, *ALS, *EASE)
PEER_SETTINGS = {
    "implicit-bpr": "implicit 0.7 BPR, lr 0.05, reg 0.01, 200 iterations",
    "cornac-bpr": "cornac BPR, lr 0.01, lambda 0.01, 400 iterations",
    **{name: f"LightFM {loss.upper()}, lr {lr}, {ep} epochs" for name, (loss, lr, ep) in LIGHTFM.items()},
    **{
        name: f"implicit 0.7 AlternatingLeastSquares, regularization {r:g}, alpha {a:g}, {ALS_ITERATIONS} iterations, "
        "binary train matrix"
        for name, (r, a) in ALS.items()
    },
    **{name: f"EASE, lambda {lam:g}, float32 (torch)" for name, lam in EASE.items()},
}


def load(dataset: str, data_home: Path, seed: int):
    """The data set as an Interactions container (MovieLens: genres and demographics)."""
    if dataset == "synthetic":
        from skbpr.datasets import make_interactions

        return make_interactions(600, 300, 15000, exposure_signal=3.0, popularity_skew=0.5, random_state=seed)
    if dataset == "lastfm":
        from skbpr.datasets import load_lastfm

        return load_lastfm(data_home=data_home, user_features=False, item_features=False)
    from skbpr.datasets import load_movielens

    return load_movielens(dataset, data_home=data_home, download=False)


def fit_skbpr(params: dict, train, seed: int, args) -> tuple[object, float, int]:
    """Fit HybridBPR; identity features unless the configuration asks for genres."""
    params = {"user_features_mode": "identity", "item_features_mode": "identity", **params}
    model = HybridBPR(n_components=args.factors, random_state=seed, n_threads=args.threads, **params)
    if args.epochs is not None:
        model.set_params(epochs=args.epochs)
    with timed() as timing:
        model.fit(train)
    return model, timing, model.epochs


def _factor_scores(user_factors: np.ndarray, item_factors: np.ndarray, item_bias: np.ndarray | None = None) -> Callable:
    users_t = torch.as_tensor(np.ascontiguousarray(user_factors, dtype=np.float32))
    items_t = torch.as_tensor(np.ascontiguousarray(item_factors, dtype=np.float32))
    bias_t = None if item_bias is None else torch.as_tensor(np.asarray(item_bias, dtype=np.float32))

    def score(users: torch.Tensor) -> torch.Tensor:
        s = users_t.index_select(0, users) @ items_t.T
        return s if bias_t is None else s + bias_t

    return score


def _binary(positives) -> sp.csr_matrix:
    """The train positives as a float32 0/1 matrix (the grids ignore interaction weights)."""
    X = sp.csr_matrix(positives, dtype=np.float32, copy=True)
    X.data[:] = 1.0
    return X


def fit_ease(X: sp.csr_matrix, lam: float) -> torch.Tensor:
    """EASE's item-item weights from its closed form, float32.

    ``P = (X'X + lam I)^-1`` through a Cholesky factorisation (the Gramian
    plus ``lam I`` is symmetric positive definite), then ``B = I - P
    diag(1/diag P)``: ``B_ij = -P_ij / P_jj`` off the diagonal and 0 on it.
    Dense: memory grows with the square of the number of items and time with
    its cube.
    """
    dense = torch.as_tensor(X.toarray())
    gram = dense.T @ dense
    del dense
    gram.diagonal().add_(lam)
    factor = torch.linalg.cholesky(gram)
    del gram
    weights = torch.cholesky_inverse(factor)
    del factor
    weights.div_(-weights.diagonal().clone())  # column j divided by -P_jj
    weights.diagonal().zero_()
    return weights


def fit_peer(name: str, train, seed: int, args) -> tuple[Callable, float, int] | None:
    """Fit a peer library when it is importable; ``None`` otherwise."""
    positives = train.positives
    if name in EASE:
        X = _binary(positives)
        with timed() as timing:
            weights = fit_ease(X, EASE[name])
        rows = torch.as_tensor(X.toarray())

        def ease_scores(users: torch.Tensor) -> torch.Tensor:
            return rows.index_select(0, users) @ weights

        return ease_scores, timing, 0
    if name in ALS and importlib.util.find_spec("implicit"):
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        regularization, alpha = ALS[name]
        X = _binary(positives)
        # implicit runs its own threads (num_threads); BLAS threads on top would oversubscribe, as it warns
        with threadpool_limits(limits=1, user_api="blas"):
            model = AlternatingLeastSquares(
                factors=args.factors, regularization=regularization, alpha=alpha, iterations=ALS_ITERATIONS,
                num_threads=args.threads, random_state=seed,
            )  # fmt: skip
            with timed() as timing:
                model.fit(X, show_progress=False)
        return _factor_scores(model.user_factors, model.item_factors), timing, 0
    if name == "implicit-bpr" and importlib.util.find_spec("implicit"):
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        epochs = 200
        model = BayesianPersonalizedRanking(
            factors=args.factors, learning_rate=0.05, regularization=0.01, iterations=epochs,
            num_threads=args.threads, random_state=seed,
        )  # fmt: skip
        with timed() as timing:
            model.fit(positives, show_progress=False)
        return _factor_scores(model.user_factors, model.item_factors), timing, epochs
    if name == "cornac-bpr" and importlib.util.find_spec("cornac"):
        import cornac

        epochs = 400
        coo = positives.tocoo()
        triplets = list(zip(coo.row.tolist(), coo.col.tolist(), [1.0] * coo.nnz, strict=True))
        data = cornac.data.Dataset.build(triplets, seed=seed)
        model = cornac.models.BPR(
            k=args.factors, max_iter=epochs, learning_rate=0.01, lambda_reg=0.01, seed=seed, verbose=False
        )
        with timed() as timing:
            model.fit(data)
        # cornac indexes the users and items it saw; unseen items rank last.
        n_users, n_items = positives.shape
        u = np.zeros((n_users, args.factors), dtype=np.float32)
        v = np.zeros((n_items, args.factors), dtype=np.float32)
        b = np.full(n_items, -1e9, dtype=np.float32)
        uid = np.array(list(data.uid_map.keys()))
        uix = np.array(list(data.uid_map.values()))
        iid = np.array(list(data.iid_map.keys()))
        iix = np.array(list(data.iid_map.values()))
        u[uid] = model.u_factors[uix]
        v[iid] = model.i_factors[iix]
        b[iid] = model.i_biases[iix]
        return _factor_scores(u, v, b), timing, epochs
    if name in LIGHTFM and importlib.util.find_spec("lightfm"):
        from lightfm import LightFM

        loss, learning_rate, epochs = LIGHTFM[name]
        model = LightFM(no_components=args.factors, loss=loss, learning_rate=learning_rate, random_state=seed)
        with timed() as timing:
            model.fit(positives.tocoo(), epochs=epochs, num_threads=args.threads)
        return _factor_scores(model.user_embeddings, model.item_embeddings, model.item_biases), timing, epochs
    return None


def run(args: argparse.Namespace, dataset: str) -> list[dict]:
    """Every requested system on every seed of one data set; one row per (system, seed)."""
    torch.set_num_threads(args.threads)
    rows = []
    for seed in args.seeds:
        data = load(dataset, args.data_home, seed)
        train, test = train_test_split(data, test_size=0.2, random_state=seed)
        per_user: dict[str, np.ndarray] = {}  # system -> per-user NDCG@10 on this seed
        for name in args.configs:
            if name in SKBPR_CONFIGS:
                with warnings.catch_warnings():
                    # "bpr unweighted" ignores the play counts that the defaults use (weighting="log")
                    warnings.filterwarnings("ignore", message=".*interaction weights.*", category=UserWarning)
                    model, timing, epochs = fit_skbpr(dict(SKBPR_CONFIGS[name]), train, seed, args)
                scores = evaluate(model, test, metrics=METRICS)
                system = f"skbpr {name}"
                per_user[system] = evaluate(model, test, metrics=["ndcg@10"], per_user=True)["ndcg@10"].to_numpy()
            elif name == "popularity":
                with timed() as timing:
                    model = PopularityRecommender().fit(train)
                epochs = 0
                scores = evaluate(model, test, metrics=METRICS)
                system = name
                per_user[system] = evaluate(model, test, metrics=["ndcg@10"], per_user=True)["ndcg@10"].to_numpy()
            else:
                fitted = fit_peer(name, train, seed, args)
                if fitted is None:
                    print(f"# {name}: not importable, skipped", file=sys.stderr)
                    continue
                score_fn, timing, epochs = fitted
                scores = evaluate_scores(score_fn, test.positives, exclude=train.positives, metrics=METRICS)
                system = name
                per_user[system] = evaluate_scores_per_user(
                    score_fn, test.positives, exclude=train.positives, metrics=["ndcg@10"]
                )[1]["ndcg@10"]
            seconds = timing.seconds
            row = {
                "system": system,
                "dataset": dataset,
                "seed": seed,
                **scores,
                "fit_s": seconds,
                "fit_load": timing.load,
                "samples_per_s": train.n_positives * epochs / seconds if epochs and seconds > 0 else None,
            }
            rows.append(row)
            print(
                f"{dataset:>8} {system:>24} seed {seed}: "
                + " ".join(f"{m} {row[m]:.4f}" for m in METRICS)
                + f" fit {seconds:.2f}s ({load_text(timing.load)})",
                file=sys.stderr,
                flush=True,
            )
        significance([r for r in rows if r["seed"] == seed], per_user)
    return rows


def significance(rows: list[dict], per_user: dict[str, np.ndarray]) -> None:
    """Add to the HybridBPR rows of one seed the best peer and the Holm-corrected Wilcoxon p-value against it."""
    peers = [r for r in rows if not r["system"].startswith("skbpr ")]
    ours = [r for r in rows if r["system"].startswith("skbpr ")]
    if not peers or not ours:
        return
    best = max(peers, key=lambda r: r["ndcg@10"])["system"]
    p_values = [paired_p_value(per_user[r["system"]], per_user[best], "wilcoxon") for r in ours]
    for row, p in zip(ours, correct_p_values(p_values, "holm"), strict=True):
        row["best_peer"], row["p_vs_best_peer"] = best, float(p)


def summarise(rows: list[dict]) -> list[dict]:
    """Mean, standard deviation (ddof=0), minimum and maximum over seeds per system, in first-seen order."""
    out = []
    for system in dict.fromkeys(r["system"] for r in rows):
        group = [r for r in rows if r["system"] == system]
        entry = {"system": system, "n_seeds": len(group)}
        for key in [*METRICS, "fit_s", "samples_per_s"]:
            values = np.array([r[key] for r in group if r.get(key) is not None], dtype=float)
            entry[key] = float(values.mean()) if values.size else None
            entry[f"{key}_std"] = float(values.std()) if values.size else None
            entry[f"{key}_min"] = float(values.min()) if values.size else None
            entry[f"{key}_max"] = float(values.max()) if values.size else None
        p_values = [r["p_vs_best_peer"] for r in group if r.get("p_vs_best_peer") is not None]
        if p_values:  # the weakest evidence over the seeds
            entry["p_vs_best_peer"] = max(p_values)
            entry["best_peer"] = sorted({r["best_peer"] for r in group if r.get("best_peer")})
        entry["fit_load"] = worst(r.get("fit_load") for r in group)  # the highest load any of its fits saw
        out.append(entry)
    return out


def best_of_grids(summary: list[dict]) -> dict[str, str]:
    """Each grid's (``GRIDS``) system with the highest mean NDCG@10 in ``summary``: grid name -> system."""
    best = {}
    for grid, members in GRIDS.items():
        entries = [e for e in summary if e["system"] in members]
        if entries:
            best[grid] = max(entries, key=lambda e: e["ndcg@10"])["system"]
    return best


GRID_NOTE = (
    "Bold: the best setting of each grid ({grids}) on this data set, chosen on the test split, which favours "
    "these peers."
)


def markdown(summary: list[dict]) -> str:
    """The summary as a markdown table (mean ± std over seeds), headed by the load its fit times were taken under."""
    best = set(best_of_grids(summary).values())
    head = (
        "| system | P@10 | R@10 | NDCG@10 | AUC | Cov@10 | Nov@10 | ARP@10 | fit s | load (1 min) | samples/s "
        "| p vs best peer |"
    )
    lines = [head, "|" + "---|" * 12]
    for e in summary:
        cells = [f"{e[m]:.3f} ± {e[m + '_std']:.3f}" for m in METRICS]
        sps = "" if e["samples_per_s"] is None else f"{e['samples_per_s'] / 1e6:.2f} M"
        load = "" if not e.get("fit_load") else f"{e['fit_load']['load_1m']:.2f}/{e['fit_load']['cores']}"
        p = "" if "p_vs_best_peer" not in e else f"{e['p_vs_best_peer']:.2g} ({', '.join(e['best_peer'])})"
        name = f"**{e['system']}**" if e["system"] in best else e["system"]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {e['fit_s']:.2f} | {load} | {sps} | {p} |")
    table = "\n".join(lines)
    if best:
        table += "\n\n" + GRID_NOTE.format(grids=", ".join(best_of_grids(summary)))
    return mark(table, [e.get("fit_load") for e in summary])


def ndcg_table(summaries: dict[str, list[dict]]) -> str:
    """NDCG@10 of every system on every data set side by side (mean ± std, [min, max] over seeds)."""
    datasets = list(summaries)
    best = {dataset: set(best_of_grids(summary).values()) for dataset, summary in summaries.items()}
    systems = list(dict.fromkeys(e["system"] for s in summaries.values() for e in s))
    lines = ["| system | " + " | ".join(datasets) + " |", "|" + "---|" * (len(datasets) + 1)]
    for system in systems:
        cells = []
        for dataset in datasets:
            e = next((e for e in summaries[dataset] if e["system"] == system), None)
            cell = (
                ""
                if e is None
                else f"{e['ndcg@10']:.3f} ± {e['ndcg@10_std']:.3f} [{e['ndcg@10_min']:.3f}, {e['ndcg@10_max']:.3f}]"
            )
            cells.append(f"**{cell}**" if system in best[dataset] else cell)
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    if any(best.values()):
        grids = dict.fromkeys(g for summary in summaries.values() for g in best_of_grids(summary))
        table += "\n\n" + GRID_NOTE.format(grids=", ".join(grids)).replace("this data set", "each data set")
    return table


def plot(summary: list[dict], path: Path, dataset: str = "MovieLens") -> None:
    """A horizontal bar chart of NDCG@10 by system with the spread over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.35 * len(summary) + 1.2))
    names = [e["system"] for e in summary]
    ax.barh(names, [e["ndcg@10"] for e in summary], xerr=[e["ndcg@10_std"] for e in summary], color="tab:blue")
    ax.invert_yaxis()
    ax.set_xlabel("NDCG@10 (mean ± std over seeds)")
    ax.set_title(f"{dataset}: NDCG@10 by system")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _path_for(template: Path | None, dataset: str, n_datasets: int, name: str) -> Path | None:
    """``template`` with ``{dataset}`` filled in; several data sets need the placeholder."""
    if template is None:
        return None
    text = str(template)
    if "{dataset}" not in text:
        if n_datasets > 1:
            raise SystemExit(f"--{name} {text!r} must contain '{{dataset}}' when several data sets run")
        return template
    return Path(text.format(dataset=dataset))


def merge(paths: list[Path], out: Path, plot_path: Path | None = None) -> dict:
    """One result from the JSON of runs of the same data set on other seeds (run side by side)."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    datasets = {p["dataset"] for p in parts}
    if len(datasets) != 1:
        raise SystemExit(f"--merge takes runs of one data set, got {sorted(datasets)}")
    rows = [r for p in parts for r in p["rows"]]
    pairs = [(r["system"], r["seed"]) for r in rows]
    twice = sorted({pair for pair in pairs if pairs.count(pair) > 1})
    if twice:
        raise SystemExit(f"--merge: a system was run twice on one seed: {twice}")
    seeds = sorted({r["seed"] for r in rows})
    summary = summarise(rows)
    table = markdown(summary)
    print(table)
    result = {**parts[0], "seeds": seeds, "rows": rows, "summary": summary, "markdown": table}
    result["best_of_grids"] = best_of_grids(summary)
    result["peer_settings"] = {k: v for p in parts for k, v in p.get("peer_settings", {}).items()}
    result["merged_from"] = [str(p) for p in paths]
    out = _path_for(out, parts[0]["dataset"], 1, "out")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    plot_path = _path_for(plot_path, parts[0]["dataset"], 1, "plot")
    if plot_path is not None:
        plot(summary, plot_path, parts[0]["dataset"])
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset", nargs="+", default=["ml-100k"], help="ml-100k, ml-1m, ..., lastfm or 'synthetic'; several allowed"
    )
    parser.add_argument("--data-home", type=Path, default=DEFAULT_DATA_HOME)
    parser.add_argument(
        "--configs",
        nargs="+",
        default=[*SKBPR_CONFIGS, *PEERS],
        help=f"systems to run; {' and '.join(GRIDS)} stand for their whole grids",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=None, help="override HybridBPR's default epochs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "benchmarks" / "results" / "{dataset}.json",
        help="JSON of the results; '{dataset}' is replaced by the data set's name",
    )
    parser.add_argument(
        "--plot", type=Path, default=None, help="PNG of NDCG@10 by system (needs matplotlib); may hold '{dataset}'"
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=None,
        help="join the JSON of runs of other seeds (same data set) into one summary; fits nothing",
    )
    args = parser.parse_args(argv)
    if args.merge is not None:
        return merge(args.merge, args.out, args.plot)
    args.configs = list(dict.fromkeys(c for name in args.configs for c in GRIDS.get(name, [name])))
    unknown = [c for c in args.configs if c not in SKBPR_CONFIGS and c not in PEERS]
    if unknown:
        parser.error(f"unknown --configs {unknown}; choose from {[*SKBPR_CONFIGS, *PEERS, *GRIDS]}")
    outs = {d: _path_for(args.out, d, len(args.dataset), "out") for d in args.dataset}
    plots = {d: _path_for(args.plot, d, len(args.dataset), "plot") for d in args.dataset}
    results, summaries = {}, {}
    for dataset in args.dataset:
        rows = run(args, dataset)
        summary = summarise(rows)
        summaries[dataset] = summary
        table = markdown(summary)
        print(f"\n### {dataset}\n\n{table}")
        result = {
            "dataset": dataset,
            "seeds": args.seeds,
            "factors": args.factors,
            "threads": args.threads,
            "spread": "std is numpy's (ddof=0) over seeds; min and max over seeds",
            "peer_settings": {k: v for k, v in PEER_SETTINGS.items() if k in args.configs},
            "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
            "skbpr": __version__,
            "load_at_end": machine_load(),
            "best_of_grids": best_of_grids(summary),
            "rows": rows,
            "summary": summary,
            "markdown": table,
        }
        outs[dataset].parent.mkdir(parents=True, exist_ok=True)
        outs[dataset].write_text(json.dumps(result, indent=2))
        if plots[dataset] is not None:
            plot(summary, plots[dataset], dataset)
        results[dataset] = result
    if len(args.dataset) > 1:
        print("\n### NDCG@10, mean ± std [min, max] over seeds\n\n" + ndcg_table(summaries))
    return results if len(args.dataset) > 1 else results[args.dataset[0]]


if __name__ == "__main__":
    main()
