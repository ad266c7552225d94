"""HybridBPR: a scikit-learn estimator for ranking from implicit feedback."""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from skbpr.models.base import RecommenderTagsMixin, check_interaction_matrix, ignore_target, warn_if_weighted
from skbpr.training import OPTIMIZERS, TrainingProblem, make_optimizer, resolve_device, torch_threads
from skbpr.training.callbacks import Callback, CallbackList, ProgressBar
from skbpr.training.engine import BACKENDS, Engine, choose_backend
from skbpr.training.losses import LOSSES
from skbpr.training.model import FEATURE_MODES, FeatureMap, HybridFactorization, build_feature_matrix
from skbpr.training.sampling import SAMPLERS, users_without_candidates
from skbpr.training.stream import epoch_seed
from skbpr.utils.validation import check_bool, check_choice, check_indices, check_number, invalid

NEGATIVE_MODES = ("auto", *SAMPLERS)
_THREADS_PER_CPU = 8  # the most threads per CPU that n_threads may ask for
_F32_MAX = float(np.finfo(np.float32).max)


class HybridBPR(RecommenderTagsMixin, BaseEstimator):
    """Matrix factorisation with feature embeddings, trained on pairwise ranking losses.

    ``score(u, i) = (Fu[u] @ U) . (Fi[i] @ V) + Fi[i] @ b``, where ``Fu`` and
    ``Fi`` are user and item feature matrices (with identity columns, per
    the feature modes), so users and items that share features with known
    ones can be scored without interactions.

    Parameters
    ----------
    n_components : int, default=64
        Dimension of the latent space.
    loss : {"bpr", "logistic", "hinge", "warp"} or callable, default="bpr"
        Ranking loss. A callable ``(pos_scores, neg_scores) -> scalar tensor``
        receives scores of shape ``(B,)`` and ``(B, n_negatives)``.
    negatives : {"uniform", "implicit", "mixed", "auto"}, default="uniform"
        Where negatives come from. ``uniform``: items the user has no
        training positive for; ``implicit``: the user's implicit negatives
        (``Rneg``), uniform for users without any; ``mixed``: implicit with
        probability ``implicit_ratio``, else uniform; ``auto``: ``mixed``
        when implicit negatives are given, else ``uniform``. The default is
        ``uniform`` even when ``Rneg`` is given: implicit negatives teach the
        model to order the items a user looked at, not to push down the
        unseen catalogue that full-catalogue ranking is judged on, and on
        MovieLens they lowered NDCG@10 (``benchmarks/movielens.py``). Where
        exposure logs carry signal, search ``negatives`` and
        ``implicit_ratio`` as hyperparameters.
    implicit_ratio : float, default=0.5
        Share of implicit draws in ``mixed`` mode.
    n_negatives : int, default=1
        Negatives drawn per positive for ``bpr``, ``logistic``, ``hinge`` and
        callables (their losses average over them).
    max_sampled : int, default=10
        WARP: the most candidates drawn per positive in search of one that
        violates the margin.
    sigma : float, default=1.0
        BPR sharpness: ``-log sigmoid(sigma * (pos - neg))``.
    margin : float, default=1.0
        Margin of the ``hinge`` and ``warp`` losses.
    user_features_mode, item_features_mode : {"identity", "features", "both"}, default="both"
        ``identity``: one embedding per user (item), features ignored;
        ``features``: the given features alone; ``both``: features plus an
        identity column per row. Without given features, identity is used.
    optimizer : {"adagrad", "adam", "sgd"}, default="adagrad"
        Sparse-row optimiser: only the rows a batch touched are updated.
    learning_rate : float, default=0.1
        Step size of the optimiser (for a loss averaged over the batch).
    alpha : float, default=0.01
        L2 penalty on the representations a batch uses (per occurrence).
    init_std : float, default=0.1
        Standard deviation of the initial embeddings.
    epochs : int, default=50
        Passes over the training positives.
    batch_size : int, default=4096
        Positives per optimisation step.
    eval_metric : str, default="ndcg@10"
        Metric watched for early stopping (any name of :mod:`skbpr.metrics`).
    eval_every : int, default=1
        Evaluate on the validation data every this many epochs.
    patience : int or None, default=None
        Stop after this many evaluations without improvement and restore the
        best weights; ``None`` trains all epochs.
    validation_fraction : float or None, default=None
        Hold out this share of each user's positives for early stopping when
        ``fit`` gets no ``eval_set``.
    random_state : int, RandomState or None, default=None
        Seed of initialisation, shuffling and sampling; a fixed seed gives
        identical weights on CPU.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Torch device; ``auto`` picks CUDA when available.
    n_threads : int or None, default=None
        Torch intra-op threads during ``fit`` and ``partial_fit`` (``None``:
        torch's current setting). In the worker processes of joblib's default
        ``loky`` backend (``n_jobs > 1`` in ``GridSearchCV``,
        ``cross_validate``...) torch's setting is already the worker's share
        of the cores: loky starts workers with ``OMP_NUM_THREADS =
        cpu_count // n_jobs`` (unless the parent sets it), which torch reads
        at import, so ``None`` does not oversubscribe the machine.
        ``joblib.parallel_config(backend="loky", inner_max_num_threads=k)``
        sets another share. The compiled kernel uses as many threads.
    backend : {"auto", "native", "torch"}, default="auto"
        Training engine. ``native``: a compiled CPU kernel (an extension
        module built when skbpr is installed) for the built-in losses;
        ``torch``: torch operations on any device, and the only engine for a
        loss callable; ``auto``: ``native`` on the CPU when it applies,
        ``torch`` otherwise (with a warning, once, when the extension is
        missing or disabled by ``SKBPR_NATIVE=0``). Both apply the same
        update to a batch and draw the same epoch order and negatives from
        one counter-based random stream (:mod:`skbpr.training.stream`), so a
        fixed seed gives the same weights, to float rounding, with either
        engine, on the CPU or a GPU, whatever the thread count.
    deterministic : bool, default=True
        ``True``: batches whose weights are bit-identical for a seed,
        whatever the thread count. ``False``: the compiled kernel trains
        lock-free (Hogwild): each thread takes a share of the epoch and
        updates the rows of each sample at once, without waiting for the
        others, which is faster but makes the weights depend on thread
        timing (with one thread they are still reproducible). Same samples,
        negatives and learning rate scale; see ``docs/guide.md``. Without the
        compiled kernel, training uses the deterministic torch path and
        warns.
    callbacks : Callback, callable, list of them or None, default=None
        :class:`skbpr.callbacks.Callback` objects or functions
        ``f(estimator, epoch, logs)``.
    verbose : bool, default=False
        Show a progress bar over epochs.
    warm_start : bool, default=False
        Continue from the current weights when refitting on data of the
        same shape.

    Attributes
    ----------
    model_ : HybridFactorization
        The torch module holding the weights.
    user_embeddings_, item_embeddings_, item_biases_ : ndarray
        Learned feature embeddings (rows: features, identity columns last).
    history_ : list of dict
        Per epoch: ``epoch``, mean training ``loss`` and validation metrics.
    train_positives_ : scipy.sparse.csr_matrix
        Training positives, removed from rankings by ``recommend`` and the
        scorers.
    n_users_, n_items_ : int
        Size of the id space seen in ``fit``.
    n_features_in_ : int
        Columns of the users x items matrix ``fit`` takes: ``n_items_``.
    callbacks_ : list
        Deep copies of ``callbacks`` that the last ``fit`` called (and that
        ``partial_fit`` keeps calling): fitting never modifies the
        ``callbacks`` parameter, so ``clone`` and ``get_params`` are the same
        before and after. Read what a callback recorded, such as the
        ``run_id_`` of :class:`~skbpr.callbacks.MLflowCallback`, here.
    negatives_ : str
        The sampling mode ``auto`` resolved to.
    device_ : torch.device
        Where the model lives.

    Examples
    --------
    >>> from skbpr import HybridBPR
    >>> from skbpr.datasets import make_interactions
    >>> from skbpr.model_selection import train_test_split
    >>> data = make_interactions(200, 100, 3000, random_state=0)
    >>> train, test = train_test_split(data, test_size=0.2, random_state=0)
    >>> model = HybridBPR(n_components=16, epochs=5, random_state=0, n_threads=1, device="cpu")
    >>> model = model.fit(train)
    >>> len(model.history_)
    5
    >>> items, scores = model.recommend([0, 1, 2], k=5)
    >>> items.shape, scores.shape
    ((3, 5), (3, 5))
    >>> round(model.score(test), 1)
    0.3
    """

    def __init__(
        self,
        n_components: int = 64,
        *,
        loss: str | Callable = "bpr",
        negatives: str = "uniform",
        implicit_ratio: float = 0.5,
        n_negatives: int = 1,
        max_sampled: int = 10,
        sigma: float = 1.0,
        margin: float = 1.0,
        user_features_mode: str = "both",
        item_features_mode: str = "both",
        optimizer: str = "adagrad",
        learning_rate: float = 0.1,
        alpha: float = 0.01,
        init_std: float = 0.1,
        epochs: int = 50,
        batch_size: int = 4096,
        eval_metric: str = "ndcg@10",
        eval_every: int = 1,
        patience: int | None = None,
        validation_fraction: float | None = None,
        random_state: int | np.random.RandomState | None = None,
        device: str = "auto",
        n_threads: int | None = None,
        backend: str = "auto",
        deterministic: bool = True,
        callbacks: list | None = None,
        verbose: bool = False,
        warm_start: bool = False,
    ) -> None:
        self.n_components = n_components
        self.loss = loss
        self.negatives = negatives
        self.implicit_ratio = implicit_ratio
        self.n_negatives = n_negatives
        self.max_sampled = max_sampled
        self.sigma = sigma
        self.margin = margin
        self.user_features_mode = user_features_mode
        self.item_features_mode = item_features_mode
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.alpha = alpha
        self.init_std = init_std
        self.epochs = epochs
        self.batch_size = batch_size
        self.eval_metric = eval_metric
        self.eval_every = eval_every
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads
        self.backend = backend
        self.deterministic = deterministic
        self.callbacks = callbacks
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ checks
    def _validate_params(self) -> None:
        check_number(self.n_components, "n_components", integer=True, low=0, low_open=True)
        if not callable(self.loss):
            check_choice(self.loss, "loss", LOSSES)
        check_choice(self.negatives, "negatives", NEGATIVE_MODES)
        check_number(self.implicit_ratio, "implicit_ratio", low=0, high=1)
        check_number(self.n_negatives, "n_negatives", integer=True, low=0, low_open=True)
        check_number(self.max_sampled, "max_sampled", integer=True, low=0, low_open=True)
        check_number(self.sigma, "sigma", low=0, low_open=True)
        check_number(self.margin, "margin", low=0)
        check_choice(self.user_features_mode, "user_features_mode", FEATURE_MODES)
        check_choice(self.item_features_mode, "item_features_mode", FEATURE_MODES)
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        check_number(self.learning_rate, "learning_rate", low=0, low_open=True)
        check_number(self.alpha, "alpha", low=0)
        check_number(self.init_std, "init_std", low=0)
        self._check_float32_range()
        check_number(self.epochs, "epochs", integer=True, low=0, low_open=True)
        check_number(self.batch_size, "batch_size", integer=True, low=0, low_open=True)
        check_number(self.eval_every, "eval_every", integer=True, low=0, low_open=True)
        check_number(self.patience, "patience", integer=True, low=0, low_open=True, allow_none=True)
        if self.validation_fraction is not None:
            check_number(self.validation_fraction, "validation_fraction", low=0, high=1, low_open=True, high_open=True)
        limit = _THREADS_PER_CPU * (os.cpu_count() or 1)
        check_number(self.n_threads, "n_threads", integer=True, low=0, low_open=True, allow_none=True)
        if self.n_threads is not None and self.n_threads > limit:
            cpus = os.cpu_count()
            what = f"at most {limit} ({_THREADS_PER_CPU} x the {cpus} CPUs: more threads only slow training down)"
            raise invalid("n_threads", what, self.n_threads)
        check_choice(self.backend, "backend", BACKENDS)
        check_bool(self.deterministic, "deterministic")
        if not isinstance(self.eval_metric, str):
            raise invalid("eval_metric", "a metric name such as 'ndcg@10'", self.eval_metric)
        from skbpr.evaluation.metrics import parse_metric

        try:
            parse_metric(self.eval_metric)
        except ValueError as exc:
            raise invalid("eval_metric", f"a metric name ({exc})", self.eval_metric) from exc
        CallbackList(self.callbacks)  # raises TypeError for anything that is not a callback

    def _check_float32_range(self) -> None:
        """Reject magnitudes that overflow float32, the training dtype, for the initial model.

        Initial weights lie within 6 standard deviations (all but a 2e-9
        share), so an initial score, a sum of ``n_components`` products, is
        bounded by ``n_components * (6 * init_std)**2``; trained scores are
        taken to be of order 1 at least. ``init_std`` must keep that bound
        finite, and ``sigma`` (times a score difference), ``alpha`` (times a
        row's squared norm) and ``margin`` must keep the loss finite.
        """
        k = int(self.n_components)
        coord = 6.0 * float(self.init_std)
        score = k * coord * coord  # products of floats: inf, never OverflowError
        std_max = float(np.sqrt(_F32_MAX / 2 / (36.0 * k)))
        if not float(self.init_std) <= std_max:
            what = (
                f"<= {std_max:.3g} with n_components={k}: larger initial weights make "
                "the scores overflow float32 (the training dtype)"
            )
            raise invalid("init_std", what, self.init_std)
        scale = max(score, 1.0)
        sigma_max = _F32_MAX / (2 * scale)
        if not float(self.sigma) <= sigma_max:
            what = (
                f"<= {sigma_max:.3g}: sigma * (pos - neg) overflows float32 (the training dtype) "
                f"for scores of magnitude {scale:.3g} (init_std={self.init_std!r}, n_components={k})"
            )
            raise invalid("sigma", what, self.sigma)
        if not float(self.alpha) <= sigma_max:
            what = (
                f"<= {sigma_max:.3g}: alpha * ||w||^2, the L2 penalty, overflows float32 "
                f"(the training dtype) for rows of squared norm {scale:.3g} "
                f"(init_std={self.init_std!r}, n_components={k})"
            )
            raise invalid("alpha", what, self.alpha)
        if not float(self.margin) <= _F32_MAX / 4:
            raise invalid("margin", f"<= {_F32_MAX / 4:.3g} (float32, the training dtype)", self.margin)

    def _check_eval_metric(self, n_items: int) -> None:
        """The cutoff of ``eval_metric`` cannot exceed the number of items."""
        from skbpr.evaluation.metrics import parse_metric

        metric = parse_metric(self.eval_metric)
        if metric.k is not None and metric.k > n_items:
            raise ValueError(
                f"eval_metric={self.eval_metric!r} cuts the ranking at k={metric.k} but the data has "
                f"{n_items} items; use a cutoff <= {n_items}"
            )

    def _copy_callbacks(self) -> list:
        """Deep copies of the ``callbacks`` parameter: fit works on them, never on the parameter."""
        if self.callbacks is None:
            return []
        items = [self.callbacks] if isinstance(self.callbacks, Callback) or callable(self.callbacks) else self.callbacks
        try:
            return copy.deepcopy(list(items))
        except Exception as exc:
            raise TypeError(
                "callbacks must support copy.deepcopy: fit works on copies (the fitted callbacks_) so that "
                f"the callbacks parameter is never modified; copying failed with {exc!r}"
            ) from exc

    # --------------------------------------------------------------------- fit
    def fit(
        self,
        X: Any,
        Rneg: Any = None,
        *,
        user_features: Any = None,
        item_features: Any = None,
        eval_set: Any = None,
    ) -> HybridBPR:
        """Learn embeddings from positive (and implicit negative) interactions.

        Parameters
        ----------
        X : Interactions or sparse matrix or array of shape (n_users, n_items)
            An :class:`skbpr.interactions.Interactions` container, or the
            positives ``Rpos`` (nonzero = interaction, nonnegative values).
            Interaction weights are not used: values other than 1 (counts,
            weights) are treated as binary, with a ``UserWarning``.
        Rneg : sparse matrix or array of shape (n_users, n_items), optional
            Implicit negatives (shown or watched, not engaged). Entries that
            are also positives are dropped, with a warning. A 1-D array is
            ignored: it can only be the target ``y`` that scikit-learn tools
            pass second, and a ranking model learned from implicit feedback
            has no target.
        user_features : sparse matrix or array of shape (n_users, n_user_features), optional
            Nonnegative user feature weights.
        item_features : sparse matrix or array of shape (n_items, n_item_features), optional
            Nonnegative item feature weights.
        eval_set : Interactions or sparse matrix or array of shape (n_users, n_items), optional
            Held-out positives (same id space) for early stopping.

        Returns
        -------
        self : HybridBPR

        Notes
        -----
        With ``warm_start=True`` a refit continues from the current weights
        when the data has the same feature columns; a grown id space (more
        users or items) adds fresh rows for the new ones. Anything else
        (fewer users or items, other feature columns, ``n_components`` or
        feature modes) re-initialises the model with a ``UserWarning`` that
        names what changed.
        """
        data = self._as_interactions(X, Rneg, user_features, item_features)
        self._validate_params()
        eval_data = self._check_eval_set(eval_set, data)
        if eval_data is not None or self.validation_fraction is not None:
            self._check_eval_metric(data.n_items)
        device = resolve_device(self.device)
        warn_if_weighted(data, type(self).__name__)
        self.callbacks_ = self._copy_callbacks()
        search = _search_context(data)  # before a validation split makes data another container
        if eval_data is None and self.validation_fraction is not None:
            from skbpr.evaluation.splitters import train_test_split

            data, eval_data = train_test_split(
                data,
                test_size=self.validation_fraction,
                random_state=check_random_state(self.random_state).randint(2**31),
            )
        with torch_threads(self.n_threads):
            self._fit(data, eval_data, device, self.epochs, reset=not self.warm_start, search=search)
        self.n_features_in_ = self.n_items_
        return self

    def partial_fit(
        self, X: Any, Rneg: Any = None, *, user_features: Any = None, item_features: Any = None
    ) -> HybridBPR:
        """Train one more epoch from the current weights (initialises them if unfitted).

        Parameters
        ----------
        X, Rneg, user_features, item_features
            As in :meth:`fit`. Data with more users or items than the fitted
            model (a grown id space, same feature columns) grows the model:
            the new users and items get fresh rows, the others keep their
            weights and optimiser state, and ``history_`` continues.

        Returns
        -------
        self : HybridBPR

        Raises
        ------
        ValueError
            When the data cannot continue the fitted model: fewer users or
            items, other feature columns, ``n_components`` or feature modes.
            The model is left untouched.
        """
        data = self._as_interactions(X, Rneg, user_features, item_features)
        self._validate_params()
        device = resolve_device(self.device)
        changes = self._incompatibilities(data) if hasattr(self, "model_") else []
        if changes:
            raise ValueError(
                f"partial_fit cannot continue the fitted model: {'; '.join(changes)}. "
                "Call fit to train a new model on this data"
            )
        warn_if_weighted(data, type(self).__name__)
        if not hasattr(self, "model_") or not hasattr(self, "callbacks_"):
            self.callbacks_ = self._copy_callbacks()
        with torch_threads(self.n_threads):
            self._fit(data, None, device, 1, reset=False, search=_search_context(data))
        self.n_features_in_ = self.n_items_
        return self

    def _as_interactions(self, X: Any, Rneg: Any, user_features: Any, item_features: Any) -> Any:
        from skbpr.data.interactions import Interactions

        if isinstance(X, Interactions):
            Rneg = ignore_target(Rneg)
            given = {"Rneg": Rneg, "user_features": user_features, "item_features": item_features}
            extra = [k for k, v in given.items() if v is not None]
            if extra:
                raise ValueError(
                    f"{', '.join(extra)} must be None when X is an Interactions container (it carries them)"
                )
            return X
        if X is None:
            raise ValueError("X (Rpos) must be an Interactions container or a users x items matrix, got None")
        Rneg = ignore_target(Rneg)
        X = check_interaction_matrix(X, "X")
        if Rneg is not None:
            Rneg = check_interaction_matrix(Rneg, "Rneg")
        return Interactions.from_matrices(X, Rneg, user_features=user_features, item_features=item_features)

    def _check_eval_set(self, eval_set: Any, data: Any) -> Any:
        if eval_set is None:
            return None
        from skbpr.data.interactions import Interactions

        if not isinstance(eval_set, Interactions):
            if not (sp.issparse(eval_set) or hasattr(eval_set, "__array__") or isinstance(eval_set, list)):
                raise TypeError(
                    "eval_set must be an Interactions container or a users x items matrix, "
                    f"got {type(eval_set).__name__}"
                )
            eval_set = Interactions.from_matrices(check_interaction_matrix(eval_set, "eval_set"))
        if (eval_set.n_users, eval_set.n_items) != (data.n_users, data.n_items):
            raise ValueError(
                f"eval_set has {eval_set.n_users} users x {eval_set.n_items} items, "
                f"the training data {data.n_users} x {data.n_items}: they must share one id space"
            )
        return eval_set

    def _incompatibilities(self, data: Any) -> list[str]:
        """What keeps ``data`` from continuing the fitted model (empty when it can, maybe grown)."""
        changes = []
        if data.n_users < self.n_users_:
            changes.append(f"n_users went from {self.n_users_} to {data.n_users} (fewer users)")
        if data.n_items < self.n_items_:
            changes.append(f"n_items went from {self.n_items_} to {data.n_items} (fewer items)")
        if self.model_.n_components != self.n_components:
            changes.append(f"n_components went from {self.model_.n_components} to {self.n_components}")
        names = ("user feature columns", "item feature columns", "user_features_mode", "item_features_mode")
        for name, old, new in zip(names, self._feature_signature_, self._feature_signature(data), strict=True):
            if old != new:
                changes.append(f"{name} went from {old!r} to {new!r}")
        return changes

    def _grow_or_reset(self, data: Any, reset: bool) -> bool:
        """Whether ``_fit`` must initialise a fresh model; grows the fitted one when it can.

        A model continues on data whose id space has grown (more users or
        items, same feature columns and modes, same ``n_components``): the
        tables get rows for the new identity columns, drawn like a fresh
        model's (seeded by the fit seed and the table sizes), and the
        optimiser state is padded with zeros. Anything else re-initialises
        the model, with a ``UserWarning`` when a warm start was asked for
        (``partial_fit`` raises before getting here).
        """
        if reset or not hasattr(self, "model_"):
            return True
        changes = self._incompatibilities(data)
        if changes:
            warnings.warn(
                f"warm_start=True cannot continue the fitted model: {'; '.join(changes)}; "
                "the model is re-initialised and history_ restarts",
                UserWarning,
                stacklevel=4,
            )
            return True
        user_rows = self._table_rows(data.user_features, data.n_users, self.user_features_mode)
        item_rows = self._table_rows(data.item_features, data.n_items, self.item_features_mode)
        model = self.model_
        weights = [model.user_weight.data, model.item_weight.data]
        states = list(self._optimizer_state)
        for side, rows in enumerate((user_rows, item_rows)):
            old = weights[side].shape[0]
            if rows == old:
                continue
            init = torch.Generator().manual_seed(int(self._seed) * 1_000_003 + 2 * old + side)
            fresh = torch.randn((rows - old, weights[side].shape[1]), generator=init) * self.init_std
            if side == 1:
                fresh[:, -1] = 0.0  # biases start at zero, as in a fresh model
            weights[side] = torch.cat([weights[side], fresh.to(weights[side])])
            if states[side] is not None:
                states[side] = {
                    key: torch.cat([value, value.new_zeros((rows - old, *value.shape[1:]))])
                    if value.dim() and value.shape[0] == old
                    else value
                    for key, value in states[side].items()
                }
        model.user_weight = torch.nn.Parameter(weights[0], requires_grad=False)
        model.item_weight = torch.nn.Parameter(weights[1], requires_grad=False)
        self._optimizer_state = tuple(states)
        return False

    @staticmethod
    def _table_rows(features: Any, n_rows: int, mode: str) -> int:
        """Rows of an embedding table: feature columns, then one identity row per entity."""
        if features is None or mode == "identity":
            return n_rows
        return features.shape[1] + (n_rows if mode == "both" else 0)

    def _feature_signature(self, data: Any) -> tuple:
        uf, itf = data.user_features, data.item_features
        return (
            None if uf is None else uf.shape[1],
            None if itf is None else itf.shape[1],
            self.user_features_mode,
            self.item_features_mode,
        )

    def _fit(
        self, data: Any, eval_data: Any, device: torch.device, epochs: int, *, reset: bool, search: dict[str, Any]
    ) -> None:
        backend = choose_backend(self.backend, device, self.loss, deterministic=self.deterministic)
        positives = data.positives
        negatives = data.negatives
        mode = self.negatives
        if mode == "auto":
            mode = "mixed" if negatives is not None and negatives.nnz else "uniform"
        user_matrix = build_feature_matrix(data.user_features, data.n_users, self.user_features_mode)
        item_matrix = build_feature_matrix(data.item_features, data.n_items, self.item_features_mode)
        user_map = FeatureMap(user_matrix, data.n_users, device)
        item_map = FeatureMap(item_matrix, data.n_items, device)
        self._check_feature_rows(user_matrix, "user_features", "user_features_mode")
        self._check_feature_rows(item_matrix, "item_features", "item_features_mode")
        coo = positives.tocoo()
        users = torch.as_tensor(coo.row.astype(np.int64), device=device)
        items = torch.as_tensor(coo.col.astype(np.int64), device=device)
        full = users_without_candidates(positives)
        if full.size:
            keep = ~np.isin(coo.row, full)
            if not keep.any():
                raise ValueError(
                    "X (Rpos) leaves no negative to draw: every user with a positive has every item (column, "
                    f"n_features = {data.n_items}) as a positive, so there is nothing to rank them against"
                )
            warnings.warn(
                f"{full.size} users have every item as a positive and no possible negative; "
                "their positives are skipped in training",
                UserWarning,
                stacklevel=3,
            )
            users, items = users[torch.as_tensor(keep, device=device)], items[torch.as_tensor(keep, device=device)]

        fresh = self._grow_or_reset(data, reset)
        if fresh:
            self._seed = int(check_random_state(self.random_state).randint(2**31 - 1))
            init = torch.Generator().manual_seed(self._seed)
            model = HybridFactorization(
                user_map.n_features, item_map.n_features, self.n_components, init_std=self.init_std, generator=init
            )
            self.history_ = []
            self._optimizer_state = (None, None)
        else:
            model = self.model_
        model = model.to(device)
        opt_u = make_optimizer(self.optimizer, model.user_weight.data, self.learning_rate)
        opt_i = make_optimizer(self.optimizer, model.item_weight.data, self.learning_rate)
        opt_u.load_state(self._optimizer_state[0])
        opt_i.load_state(self._optimizer_state[1])
        problem = TrainingProblem(
            users=users,
            items=items,
            positives=positives,
            negatives=negatives,
            sampling=mode,
            implicit_ratio=float(self.implicit_ratio),
            user_map=user_map,
            item_map=item_map,
            loss=self.loss,
            sigma=float(self.sigma),
            margin=float(self.margin),
            alpha=float(self.alpha),
            draws_per_sample=int(self.max_sampled if self.loss == "warp" else self.n_negatives),
            batch_size=int(self.batch_size),
        )
        engine = Engine(problem, model, opt_u, opt_i, backend=backend, deterministic=self.deterministic)
        self.backend_ = backend
        self.model_ = model
        self._user_map, self._item_map = user_map, item_map
        self._feature_signature_ = self._feature_signature(data)
        self.n_users_, self.n_items_ = data.n_users, data.n_items
        self.n_user_features_in_ = 0 if data.user_features is None else data.user_features.shape[1]
        self.n_item_features_in_ = 0 if data.item_features is None else data.item_features.shape[1]
        self.train_positives_ = positives
        self.negatives_ = mode
        self.device_ = device
        self._optimizer_state = (opt_u.state, opt_i.state)  # the live state: kept whatever the epochs do
        self._run_epochs(engine, epochs, data, eval_data, search)

    def _check_feature_rows(self, matrix: sp.csr_matrix | None, name: str, mode_name: str) -> None:
        if matrix is None:
            return
        empty = np.flatnonzero(np.diff(matrix.indptr) == 0)
        if empty.size:
            raise ValueError(
                f"{name} has {empty.size} rows with no feature at all (first: {empty[:5].tolist()}) "
                f"and {mode_name}='features' adds no identity column; use {mode_name}='both'"
            )

    def _run_epochs(self, engine: Engine, epochs: int, data: Any, eval_data: Any, search: dict[str, Any]) -> None:
        callbacks = CallbackList(self.callbacks_)
        if self.verbose:
            callbacks.callbacks.append(ProgressBar(total=epochs))
        callbacks.on_fit_begin(self, {"epochs": epochs, **self._data_summary(data), "search": search})
        start = len(self.history_)
        scales = (_feature_scale(self._user_map), _feature_scale(self._item_map))
        best_value, best_state, waited = -np.inf, None, 0
        self.best_epoch_ = None
        stopped_early = False
        for offset in range(epochs):
            epoch = start + offset + 1
            snapshot = self._weights(engine)
            try:
                loss = engine.epoch(epoch_seed(self._seed, epoch))
            except KeyboardInterrupt:
                self._restore(snapshot, engine)
                self.history_.append({"epoch": epoch, "interrupted": True})
                callbacks.on_fit_end(self, {"interrupted": True})
                raise
            problem = f"the training loss became {loss}" if not np.isfinite(loss) else self._divergence(engine, scales)
            if problem is not None:
                self._restore(snapshot, engine)
                kept = f"the weights of epoch {epoch - 1}" if epoch > 1 else "the initial weights"
                callbacks.on_fit_end(self, {"error": f"training diverged at epoch {epoch}: {problem}"})
                raise FloatingPointError(
                    f"training diverged at epoch {epoch}: {problem}; {kept} were kept. "
                    f"Try a smaller learning_rate (now {self.learning_rate!r}), init_std (now {self.init_std!r}) "
                    f"or sigma (now {self.sigma!r})"
                )
            logs: dict[str, float] = {"epoch": epoch, "loss": loss}
            if eval_data is not None and (offset + 1) % self.eval_every == 0:
                logs.update({f"val_{k}": v for k, v in self._evaluate(eval_data).items()})
                value = logs[f"val_{self.eval_metric}"]
                if value > best_value:
                    best_value, best_state, waited = value, (epoch, self._weights()), 0
                    self.best_epoch_ = epoch
                else:
                    waited += 1
            self.history_.append(logs)
            stop = callbacks.on_epoch_end(self, epoch, dict(logs))
            if self.patience is not None and eval_data is not None and waited >= self.patience:
                stopped_early = True
            if stop or stopped_early:
                break
        if best_state is not None and self.patience is not None:
            self._restore(best_state[1])
        callbacks.on_fit_end(self, {"stopped_early": stopped_early, "epochs_run": len(self.history_) - start})

    def _evaluate(self, eval_data: Any) -> dict[str, float]:
        from skbpr.evaluation.metrics import evaluate

        metrics = {self.eval_metric, "ndcg@10", "auc"}
        return evaluate(self, eval_data, metrics=sorted(metrics))

    def _weights(self, engine: Engine | None = None) -> tuple[torch.Tensor, ...]:
        """Copies of the tables, and of the optimisers' state when ``engine`` is given."""
        tensors = [self.model_.user_weight.data, self.model_.item_weight.data]
        if engine is not None:
            for optimizer in (engine.user_optimizer, engine.item_optimizer):
                tensors.extend(optimizer.state.values())
        return tuple(t.clone() for t in tensors)

    def _restore(self, weights: tuple[torch.Tensor, ...], engine: Engine | None = None) -> None:
        tensors = [self.model_.user_weight.data, self.model_.item_weight.data]
        if engine is not None:
            for optimizer in (engine.user_optimizer, engine.item_optimizer):
                tensors.extend(optimizer.state.values())
        for target, saved in zip(tensors, weights, strict=True):
            target.copy_(saved)

    def _divergence(self, engine: Engine, scales: tuple[float, float]) -> str | None:
        """Why the current weights cannot be kept (non-finite tables, state or scores), or None.

        One pass over each table and state array: the largest magnitude,
        which is NaN or infinite if any entry is. Scores are bounded without
        computing them: a representation is a weighted sum of table rows
        (``scales``: the largest row sums of the feature weights), so
        ``|score| <= su * d * |U|max * si * |V|max + si * |b|max``; the bound
        must stay below float32's range, or some score could overflow.
        """
        user, item = self.model_.user_weight.data, self.model_.item_weight.data
        u_max, v_max = _max_abs(user), _max_abs(item[:, :-1])
        b_max = _max_abs(item[:, -1])
        for name, value in (("user embeddings", u_max), ("item embeddings", max(v_max, b_max))):
            if not np.isfinite(value):
                return f"the {name} became non-finite"
        for optimizer in (engine.user_optimizer, engine.item_optimizer):
            for key, state in optimizer.state.items():
                if state.is_floating_point() and not np.isfinite(_max_abs(state)):
                    return f"the optimiser state {key!r} became non-finite"
        su, si = scales
        bound = su * self.n_components * u_max * si * v_max + si * b_max
        if not bound < _SCORE_LIMIT:
            return f"scores could reach {bound:.3g}, beyond float32's range"
        return None

    @staticmethod
    def _data_summary(data: Any) -> dict[str, int]:
        return {
            "n_users": data.n_users,
            "n_items": data.n_items,
            "n_positives": data.positives.nnz,
            "n_negatives": 0 if data.negatives is None else data.negatives.nnz,
            "n_user_features": 0 if data.user_features is None else data.user_features.shape[1],
            "n_item_features": 0 if data.item_features is None else data.item_features.shape[1],
        }

    # ------------------------------------------------------------ embeddings
    @property
    def user_embeddings_(self) -> np.ndarray:
        """User feature embeddings ``U``, shape ``(n_user_feature_rows, n_components)``."""
        check_is_fitted(self, "model_")
        return self.model_.user_weight.detach().cpu().numpy().copy()

    @property
    def item_embeddings_(self) -> np.ndarray:
        """Item feature embeddings ``V``, shape ``(n_item_feature_rows, n_components)``."""
        check_is_fitted(self, "model_")
        return self.model_.item_weight[:, :-1].detach().cpu().numpy().copy()

    @property
    def item_biases_(self) -> np.ndarray:
        """Item feature biases ``b``, shape ``(n_item_feature_rows,)``."""
        check_is_fitted(self, "model_")
        return self.model_.item_weight[:, -1].detach().cpu().numpy().copy()

    def _cold_map(self, features: Any, side: str) -> FeatureMap:
        """A feature map for new rows given in the raw feature space of ``side``."""
        n_in = self.n_user_features_in_ if side == "user" else self.n_item_features_in_
        mode = self.user_features_mode if side == "user" else self.item_features_mode
        name = f"{side}_features"
        if n_in == 0 or mode == "identity":
            raise ValueError(
                f"{name} cannot score new {side}s: the model was fitted with "
                + (f"no {name}" if n_in == 0 else f"{side}_features_mode='identity'")
            )
        from skbpr.data.interactions import as_csr

        matrix = as_csr(features, name)
        if matrix.shape[1] != n_in:
            raise ValueError(f"{name} must have {n_in} columns (the features seen in fit), got shape {matrix.shape}")
        if mode == "both":  # new rows have no identity column of their own
            matrix = sp.hstack(
                [matrix, sp.csr_matrix((matrix.shape[0], self._n_rows(side)), dtype=np.float32)], format="csr"
            )
        return FeatureMap(matrix, matrix.shape[0], self.device_)

    def _n_rows(self, side: str) -> int:
        return self.n_users_ if side == "user" else self.n_items_

    def _vectors(self, side: str, rows: np.ndarray | None = None, features: Any = None) -> torch.Tensor:
        """Representations on the device: known ``rows`` or new ``features`` rows."""
        check_is_fitted(self, "model_")
        if features is not None:
            fmap = self._cold_map(features, side)
            idx = torch.arange(fmap.n_rows, device=self.device_)
        else:
            fmap = self._user_map if side == "user" else self._item_map
            idx = (
                torch.arange(fmap.n_rows, device=self.device_)
                if rows is None
                else torch.as_tensor(rows, device=self.device_)
            )
        table = self.model_.user_weight if side == "user" else self.model_.item_weight
        with torch.no_grad():
            return fmap.gather(table.data, idx)

    def user_representations(self, user_features: Any = None) -> np.ndarray:
        """User vectors ``Fu @ U``: known users, or new users from feature rows.

        Parameters
        ----------
        user_features : matrix of shape (n, n_user_features), optional
            Feature rows of (possibly new) users in the feature space given to
            ``fit``; ``None`` returns all known users.
        """
        return self._vectors("user", features=user_features).cpu().numpy()

    def item_representations(self, item_features: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Item vectors ``Fi @ V`` and biases ``Fi @ b``: known items or new feature rows."""
        vec = self._vectors("item", features=item_features).cpu().numpy()
        return vec[:, :-1], vec[:, -1]

    # ---------------------------------------------------------------- serving
    def user_item_scores(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for ``users`` (a LongTensor on ``device_``)."""
        with torch.no_grad():
            u = self._user_map.gather(self.model_.user_weight.data, users)
            return HybridFactorization.scores(u, self._all_items())

    def _all_items(self) -> torch.Tensor:
        return self._vectors("item")

    def predict(self, X: Any) -> np.ndarray:
        """Scores of user-item pairs.

        Parameters
        ----------
        X : array of shape (n_pairs, 2) or Interactions
            Rows of ``(user_index, item_index)``, or a container whose
            positives are the pairs to score (in its canonical order: by
            user, then item), in the fitted id space.

        Returns
        -------
        scores : ndarray of shape (n_pairs,)

        Examples
        --------
        >>> import numpy as np
        >>> from skbpr import HybridBPR
        >>> from skbpr.datasets import make_interactions
        >>> data = make_interactions(50, 40, 300, random_state=0)
        >>> model = HybridBPR(8, epochs=2, random_state=0, n_threads=1, device="cpu").fit(data)
        >>> model.predict(np.array([[0, 1], [2, 3]])).shape
        (2,)
        >>> bool(np.allclose(model.predict(data[:3]), model.predict(np.c_[data.pos_users[:3], data.pos_items[:3]])))
        True
        """
        check_is_fitted(self, "model_")
        from skbpr.data.interactions import Interactions

        if isinstance(X, Interactions):
            if (X.n_users, X.n_items) != (self.n_users_, self.n_items_):
                raise ValueError(
                    f"X has {X.n_users} users x {X.n_items} items, the fitted model {self.n_users_} x "
                    f"{self.n_items_}: predict scores the pairs of a container in the fitted id space"
                )
            users, items = X.pos_users, X.pos_items
        else:
            if sp.issparse(X):
                raise TypeError(
                    "X must be an (n_pairs, 2) array of (user, item) indices or an Interactions container, "
                    f"got a sparse matrix of shape {X.shape}; use recommend or score for a users x items matrix"
                )
            pairs = np.asarray(X)
            if pairs.ndim != 2 or pairs.shape[1] != 2:
                hint = " (Reshape your data: a single pair is [[user, item]])" if pairs.ndim < 2 else ""
                what = "of shape (n_pairs, 2) of (user, item) indices, or an Interactions container"
                raise invalid("X", what, X, shown=f"shape {pairs.shape}{hint}")
            users = check_indices(pairs[:, 0], "X[:, 0] (users)", self.n_users_)
            items = check_indices(pairs[:, 1], "X[:, 1] (items)", self.n_items_)
        with torch.no_grad():
            scores = self.model_(
                self._user_map,
                self._item_map,
                torch.as_tensor(users, device=self.device_),
                torch.as_tensor(items, device=self.device_),
            )
        return scores.cpu().numpy()

    def recommend(
        self,
        users: Any = None,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        items: Any = None,
        user_features: Any = None,
        item_features: Any = None,
        batch_size: int = 1024,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for each user, best first.

        Parameters
        ----------
        users : array of int, optional
            Indices of known users. Leave ``None`` and pass ``user_features``
            to recommend for new users from their feature rows.
        k : int, default=10
            Items per user, at most the number of distinct candidates.
        exclude_seen : bool, default=True
            Remove each known user's training positives from the ranking.
        items : array of int, optional
            Rank only these candidate items (returned ids are item indices).
            Repeated candidates count once (the first occurrence is kept),
            and with ``exclude_seen`` the user's training positives are
            removed from them like from the full catalogue.
        user_features : matrix of shape (n_new_users, n_user_features), optional
            Cold-start users' features.
        item_features : matrix of shape (n_new_items, n_item_features), optional
            Rank a new catalogue scored from its features instead of the
            known items; returned ids index its rows.
        batch_size : int, default=1024
            Users scored per matrix product, bounding memory (``batch_size x
            n_items`` scores at a time).

        Returns
        -------
        item_ids : ndarray of shape (n_users, k)
            Ids of the recommended items; ``-1`` where fewer than ``k``
            candidates remain.
        scores : ndarray of shape (n_users, k)
            Their scores (``-inf`` where the id is ``-1``).
        """
        check_is_fitted(self, "model_")
        if (users is None) == (user_features is None):
            raise ValueError("recommend needs exactly one of users (known indices) or user_features (new users)")
        if items is not None and item_features is not None:
            raise ValueError("items and item_features cannot both be given")
        check_number(batch_size, "batch_size", integer=True, low=0, low_open=True)
        known = user_features is None
        user_idx = check_indices(users, "users", self.n_users_) if known else None
        new_items = item_features is not None
        item_vecs = self._vectors("item", features=item_features)
        candidates = None
        if items is not None:
            candidates = check_indices(items, "items", self.n_items_)
            _, first = np.unique(candidates, return_index=True)
            candidates = candidates[np.sort(first)]  # distinct, in first-occurrence order
            item_vecs = item_vecs.index_select(0, torch.as_tensor(candidates, device=self.device_))
        n_cand = item_vecs.shape[0]
        check_number(k, "k", integer=True, low=1, high=n_cand)  # at most the number of candidate items
        user_vecs = None if known else self._vectors("user", features=user_features)
        n = user_idx.size if known else user_vecs.shape[0]
        mask_seen = exclude_seen and known and not new_items
        position = None
        if mask_seen and candidates is not None:
            position = np.full(self.n_items_, -1, dtype=np.int64)
            position[candidates] = np.arange(candidates.size)
        out_ids = np.empty((n, k), dtype=np.int64)
        out_scores = np.empty((n, k), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                if known:
                    rows = torch.as_tensor(user_idx[start:stop], device=self.device_)
                    u = self._user_map.gather(self.model_.user_weight.data, rows)
                else:
                    u = user_vecs[start:stop]
                scores = HybridFactorization.scores(u, item_vecs)
                if mask_seen:
                    self._mask_seen(scores, user_idx[start:stop], position)
                top_scores, top = torch.topk(scores, k, dim=1)
                top_ids = top.cpu().numpy()
                if candidates is not None:
                    top_ids = candidates[top_ids]
                top_scores = top_scores.cpu().numpy()
                top_ids[np.isneginf(top_scores)] = -1
                out_ids[start:stop], out_scores[start:stop] = top_ids, top_scores
        return out_ids, out_scores

    def _mask_seen(self, scores: torch.Tensor, users: np.ndarray, position: np.ndarray | None) -> None:
        seen = self.train_positives_[users].tocoo()
        rows, cols = seen.row, seen.col
        if position is not None:
            cols = position[cols]
            rows, cols = rows[cols >= 0], cols[cols >= 0]
        scores[torch.as_tensor(rows, device=scores.device), torch.as_tensor(cols, device=scores.device)] = -torch.inf

    def similar_items(self, items: Any, k: int = 10, *, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to each of ``items`` (cosine of item vectors, itself excluded).

        Returns
        -------
        item_ids, scores : ndarrays of shape (len(items), k)
        """
        check_is_fitted(self, "model_")
        idx = check_indices(items, "items", self.n_items_)
        check_number(k, "k", integer=True, low=1, high=self.n_items_ - 1)
        vecs = torch.nn.functional.normalize(self._all_items()[:, :-1], dim=1)
        ids = np.empty((idx.size, k), dtype=np.int64)
        sims = np.empty((idx.size, k), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, idx.size, batch_size):
                rows = torch.as_tensor(idx[start : start + batch_size], device=self.device_)
                cos = vecs.index_select(0, rows) @ vecs.T
                cos[torch.arange(rows.numel(), device=self.device_), rows] = -torch.inf
                top_s, top_i = torch.topk(cos, k, dim=1)
                ids[start : start + batch_size] = top_i.cpu().numpy()
                sims[start : start + batch_size] = top_s.cpu().numpy()
        return ids, sims

    def score(self, X: Any, y: Any = None) -> float:
        """NDCG@10 of the held-out positives in ``X``, training positives excluded.

        Parameters
        ----------
        X : Interactions or sparse matrix or array of shape (n_users, n_items)
            Held-out positives in the fitted id space: a container, or a
            matrix as :meth:`fit` takes it (row u is user u).
        y : None
            Ignored.

        Returns
        -------
        float
            Mean NDCG@10 over the users with held-out positives; a
            ``UserWarning`` says when most of them have no training positive
            (see :func:`skbpr.metrics.evaluate`).
        """
        from skbpr.evaluation.metrics import ndcg_at_k

        return ndcg_at_k(self, X, k=10)

    # ------------------------------------------------------------ persistence
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if "device_" in state and state["device_"].type != "cpu":
            state = copy.deepcopy(state)
            _move_state(state, torch.device("cpu"))
            state["_saved_device"] = str(self.device_)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        saved = state.pop("_saved_device", None)
        self.__dict__.update(state)
        if saved is not None and torch.cuda.is_available():
            _move_state(self.__dict__, torch.device(saved))


def _search_context(data: Any) -> dict[str, Any]:
    """Where a fit stands in a cross-validation, from the data's provenance (see :mod:`skbpr.data.folds`).

    ``fold``: ``(split, n_splits)`` when ``data`` is the training part of a
    split of skbpr's splitters; ``whole``: ``True`` when ``data`` is a
    container such a splitter split, as a search's final refit fits it.
    """
    fold = getattr(data, "fold", None)
    return {"fold": fold, "whole": fold is None and bool(getattr(data, "cv_folds", None))}


_SCORE_LIMIT = 1e37  # below float32's largest value (3.4e38), with room for the sums of a GEMM


def _max_abs(t: torch.Tensor) -> float:
    """Largest magnitude in ``t`` (NaN or inf when ``t`` holds one; 0 when empty), in one pass."""
    if t.numel() == 0:
        return 0.0
    if t.device.type == "cpu":  # numpy: no thread pool to wake for a reduction this cheap
        a = t.numpy()
        return float(max(a.max(), -a.min()))
    return float(t.abs().amax())


def _feature_scale(fmap: FeatureMap) -> float:
    """Largest sum of absolute feature weights over the rows of ``fmap`` (1 for the identity)."""
    if fmap.identity:
        return 1.0
    lengths = fmap.indptr[1:] - fmap.indptr[:-1]
    owner = torch.repeat_interleave(torch.arange(lengths.numel(), device=lengths.device), lengths)
    sums = torch.zeros(lengths.numel(), dtype=torch.float64, device=lengths.device)
    sums.index_add_(0, owner, fmap.data.double().abs())
    return float(sums.max()) if sums.numel() else 0.0


def _move_state(state: dict[str, Any], device: torch.device) -> None:
    """Move a fitted estimator's torch state to ``device`` in place."""
    state["model_"] = state["model_"].to(device)
    for key in ("_user_map", "_item_map"):
        state[key].to(device)
    state["_optimizer_state"] = tuple(
        None if s is None else {k: v.to(device) if v.dim() else v for k, v in s.items()}
        for s in state["_optimizer_state"]
    )
    state["device_"] = device
