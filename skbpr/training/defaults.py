"""The per-loss defaults behind HybridBPR's ``"auto"`` parameters, in one table.

``learning_rate``, ``alpha``, ``n_negatives``, ``init_std``, ``batch_size``,
``initial_accumulator``, ``max_sampled``, ``shared_negatives``, ``unobserved_weight`` and
``reg_exponent`` default to ``"auto"``: the value
of the loss's row below, resolved when ``fit`` starts and stored in the
fitted attribute of the same name with a trailing underscore
(``learning_rate_``, ...). A number given for a parameter is used as is. A
loss callable takes the ``"bpr"`` row.

How the rows were chosen (``benchmarks/defaults_sweep.py``): on a held-out
20 % of each user's training positives, never the benchmark's test split, of
both MovieLens 100K and Last.fm HetRec 2k. With one uniform negative per
positive and 50 epochs, a user sees about ``50 * n_positives / n_users``
negatives per fit: more than the 1,682 films of MovieLens 100K, but a tenth
of Last.fm's 17,632 artists, so most of a sparse catalogue is never pushed
below the user's positives. More negatives per positive (or, at a higher
cost, more epochs) closes that gap on both sets; a larger learning rate, a
smaller L2 penalty (``alpha``), a smaller batch or smaller initial weights
did not. ``n_negatives=16`` raised validation NDCG@10 from 0.197 to 0.214
on MovieLens 100K and from 0.139 to 0.163 on Last.fm, for two to three
times the fit time of one negative. The logistic loss gained as well
(0.187 to 0.196 on MovieLens 100K), the hinge loss did not (0.180 either
way), so hinge keeps one negative.

WARP draws up to ``max_sampled`` candidates per positive instead of
``n_negatives`` (which it ignores) and is trained the way LightFM trains it
(``benchmarks/warp.py`` measures each step): one positive per optimisation
step (``batch_size=1``), so that each positive's search for a violating
candidate sees the weights the previous one left; Adagrad sums that start at
one positive's squared gradient (``initial_accumulator=1``), which damps the
first steps of rarely seen rows; small initial weights (``init_std=0.01``);
no L2 penalty; learning rate 0.02; and 30 candidates instead of 10. The
compiled kernel runs one-positive batches on one thread; the torch engine
takes one step per positive, which is slow: on a GPU set a larger
``batch_size`` and ``learning_rate`` for WARP.

The ``ials`` row (``loss="ials"``, the all-pairs squared loss of
:mod:`skbpr.training.alternating`) has no learning rate, negatives, batch or
accumulator (``None``: they do not apply); its own parameters are
``unobserved_weight`` (the weight of every pair's squared score) and
``reg_exponent`` (0: plain L2 penalty ``alpha``; 1: frequency-scaled), which
the sampled losses do not have (``None``). One setting for both sets, chosen
on the same validation shares with 15 sweeps: ``unobserved_weight=0.1``,
``alpha=5`` reached validation NDCG@10 0.210 on MovieLens 100K and 0.176 on
Last.fm (``bpr``'s row: 0.214 and 0.165). Heavier unobserved weights
(0.25, 1) or lighter ones (0.025, 0.05) and the frequency-scaled penalty
(``reg_exponent=1``, alpha 0.01 to 0.05) scored lower on at least one set;
the initial scale hardly matters (``init_std`` 0.01 or 0.1 alike), and 50
sweeps score as 15::

    python benchmarks/defaults_sweep.py --peers --settings '{}' '{"loss": "ials"}' \
        '{"loss": "ials", "epochs": 15}' '{"loss": "ials", "unobserved_weight": 0.05, "alpha": 2.5, "epochs": 15}'

The sampled softmax (``loss="softmax"``) trains on shared negatives: 64
items drawn per batch of 256 positives (``shared_negatives=64``,
``batch_size=256``), learning rate 0.02. With shared negatives each item is
pushed down once per batch in which it is drawn, so a smaller batch than the
per-positive 4,096 reaches more of the catalogue per epoch. The softmax took
a smaller learning rate than BPR (0.1 and 0.05 scored lower on MovieLens
100K's validation share, as did 0.01, an inverse temperature ``sigma`` of 0.5
or 2, and ``alpha=0.001``); 256 shared items per batch of 1,024 scored the
same as 64 per 256 on both sets (0.177 and 0.145 against 0.179 and 0.144)
for about three times the work. It stays below BPR with 16 negatives per
positive on both validation shares (0.179 against 0.214 on MovieLens 100K,
0.144 against 0.165 on Last.fm), and popularity draws with the log-Q
correction did not change that (0.176 and 0.147). The other losses keep
per-positive negatives (``shared_negatives=0``); BPR on 64 shared items per
batch of 256 scores 0.206 and 0.157. The comparison of the modes, with
``benchmarks/defaults_sweep.py``::

    python benchmarks/defaults_sweep.py --peers cornac-bpr --settings '{}' \
        '{"shared_negatives": 64, "batch_size": 256}' \
        '{"loss": "softmax"}' '{"loss": "softmax", "shared_sampling": "popularity"}' \
        '{"loss": "softmax", "shared_negatives": 256, "batch_size": 1024}' \
        '{"loss": "softmax", "shared_negatives": 256, "batch_size": 1024, "shared_sampling": "popularity"}'

The figures of the other losses come from the same script::

    python benchmarks/defaults_sweep.py --dataset ml-100k --peers --settings \
        '{"loss": "logistic", "n_negatives": 1}' '{"loss": "logistic"}' \
        '{"loss": "hinge", "n_negatives": 16}' '{"loss": "hinge"}' \
        '{"loss": "warp", "learning_rate": 0.1, "alpha": 0.01}' '{"loss": "warp"}'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

AUTO = "auto"
AUTO_PARAMS = (
    "learning_rate",
    "alpha",
    "n_negatives",
    "init_std",
    "batch_size",
    "initial_accumulator",
    "max_sampled",
    "shared_negatives",
    "unobserved_weight",
    "reg_exponent",
)

# the parameters of the all-pairs squared loss, which the sampled losses do not have
_NOT_IALS = {"unobserved_weight": None, "reg_exponent": None}
_BATCHED = {
    "init_std": 0.1,
    "batch_size": 4096,
    "initial_accumulator": 0.0,
    "max_sampled": 10,
    "shared_negatives": 0,
    **_NOT_IALS,
}
# the parameters of the sampled losses' optimisers and samplers, which the block solver of "ials" does not have
_NOT_SAMPLED = {
    "learning_rate": None,
    "n_negatives": None,
    "batch_size": None,
    "initial_accumulator": None,
    "shared_negatives": None,
}
LOSS_DEFAULTS: dict[str, dict[str, float | int | None]] = {
    "bpr": {"learning_rate": 0.1, "alpha": 0.01, "n_negatives": 16, **_BATCHED},
    "logistic": {"learning_rate": 0.1, "alpha": 0.01, "n_negatives": 16, **_BATCHED},
    "hinge": {"learning_rate": 0.1, "alpha": 0.01, "n_negatives": 1, **_BATCHED},
    "warp": {
        "learning_rate": 0.02,
        "alpha": 0.0,
        "n_negatives": 1,
        "init_std": 0.01,
        "batch_size": 1,
        "initial_accumulator": 1.0,
        "max_sampled": 30,
        "shared_negatives": 0,
        **_NOT_IALS,
    },
    "ials": {
        "alpha": 5.0,
        "init_std": 0.01,
        "max_sampled": None,
        **_NOT_SAMPLED,
        "unobserved_weight": 0.1,
        "reg_exponent": 0.0,
    },
    "softmax": {
        "learning_rate": 0.02,
        "alpha": 0.01,
        "n_negatives": 16,
        **_BATCHED,
        "batch_size": 256,
        "shared_negatives": 64,
    },
}


def loss_defaults(loss: str | Callable) -> dict[str, float | int | None]:
    """The default training settings of a loss (the parameters of :data:`AUTO_PARAMS`).

    Parameters
    ----------
    loss : {"bpr", "logistic", "hinge", "warp", "softmax", "ials"} or callable
        The loss; a callable takes the ``"bpr"`` row.

    Returns
    -------
    dict
        A copy of the loss's row of :data:`LOSS_DEFAULTS`.

    Examples
    --------
    >>> from skbpr.training.defaults import loss_defaults
    >>> loss_defaults("bpr")["n_negatives"], loss_defaults("bpr")["batch_size"]
    (16, 4096)
    >>> loss_defaults("warp")["learning_rate"], loss_defaults("warp")["batch_size"]
    (0.02, 1)
    """
    if callable(loss):
        return dict(LOSS_DEFAULTS["bpr"])
    if loss not in LOSS_DEFAULTS:
        raise ValueError(f"loss must be one of {tuple(LOSS_DEFAULTS)} or a callable, got {loss!r}")
    return dict(LOSS_DEFAULTS[loss])


def resolve(loss: str | Callable, **params: Any) -> dict[str, Any]:
    """Replace each ``"auto"`` among ``params`` by the loss's default; other values pass through.

    Parameters
    ----------
    loss : {"bpr", "logistic", "hinge", "warp", "softmax", "ials"} or callable
        The loss whose row of :data:`LOSS_DEFAULTS` fills in ``"auto"``.
    **params
        Some of the parameters of :data:`AUTO_PARAMS`, each a number or
        ``"auto"``.

    Returns
    -------
    dict
        The same keys, with ``"auto"`` resolved.

    Examples
    --------
    >>> from skbpr.training.defaults import resolve
    >>> resolve("warp", learning_rate="auto", alpha=0.05)
    {'learning_rate': 0.02, 'alpha': 0.05}
    """
    row = loss_defaults(loss)
    unknown = sorted(set(params) - set(AUTO_PARAMS))
    if unknown:
        raise ValueError(f"no per-loss default for {unknown}; parameters with one: {AUTO_PARAMS}")
    return {name: row[name] if _is_auto(value) else value for name, value in params.items()}


def _is_auto(value: Any) -> bool:
    return isinstance(value, str) and value == AUTO
