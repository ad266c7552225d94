"""HybridBPR: a scikit-learn estimator for ranking from implicit feedback.

This module is the scikit-learn face (parameters, ``fit``, ``partial_fit``,
``score``); the parameter checks are in :mod:`skbpr.models.params`, the fit
set-up and the work of ``fit`` and ``partial_fit`` in :mod:`skbpr.models.fitting`,
the epoch loop in :mod:`skbpr.models.epochs`, serving in
:mod:`skbpr.models.serving` and pickling in :mod:`skbpr.models.persistence`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from skbpr.evaluation.metrics import ndcg_at_k
from skbpr.models.base import RecommenderTagsMixin
from skbpr.models.epochs import EpochLoopMixin
from skbpr.models.fitting import FittingMixin
from skbpr.models.params import AUTO_ALSO, NEGATIVE_MODES, check_model_params, check_training_params
from skbpr.models.persistence import DevicePicklingMixin
from skbpr.models.serving import ServingMixin
from skbpr.training.weighting import Weighting

__all__ = ["AUTO_ALSO", "NEGATIVE_MODES", "HybridBPR"]


class HybridBPR(RecommenderTagsMixin, ServingMixin, FittingMixin, EpochLoopMixin, DevicePicklingMixin, BaseEstimator):
    """Matrix factorisation with feature embeddings, trained on pairwise ranking losses.

    ``score(u, i) = (Fu[u] @ U) . (Fi[i] @ V) + Fi[i] @ b``, where ``Fu`` and
    ``Fi`` are user and item feature matrices (with identity columns, per
    the feature modes), so users and items that share features with known
    ones can be scored without interactions.

    Parameters
    ----------
    n_components : int, default=64
        Dimension of the latent space.
    loss : {"bpr", "logistic", "hinge", "warp", "softmax", "ials"} or callable, default="bpr"
        Ranking loss. A callable ``(pos_scores, neg_scores) -> scalar tensor``
        receives scores of shape ``(B,)`` and ``(B, n_negatives)``.
        ``softmax``: sampled softmax cross-entropy of each positive against
        its negatives (``sigma`` its inverse temperature), by default over
        shared negatives.
        ``"ials"``: the implicit-ALS objective, ``sum over positives of
        c (1 - s)^2 + unobserved_weight * sum over all pairs of s^2`` plus
        L2 (``alpha``, ``reg_exponent``), computed over all pairs through
        Gramians and solved by alternating conjugate-gradient block solves
        (:mod:`skbpr.training.alternating`); an epoch is one sweep (user
        table, then item table). It samples nothing and has no optimiser:
        ``negatives``, ``implicit_ratio``, ``n_negatives``, ``max_sampled``,
        ``sigma``, ``margin``, ``optimizer``, ``learning_rate``,
        ``batch_size``, ``initial_accumulator`` and ``deterministic`` are
        ignored (their ``"auto"`` resolves to ``None``; values given to them
        draw a ``UserWarning`` naming them), implicit
        negatives (``Rneg``) are not used (with a ``UserWarning``), and it
        runs in torch on any device (``backend="native"`` raises).
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
    weighting : {"log", "none", "linear"} or callable, default="log"
        How the positives' values (play counts, quantities, merged
        duplicates: the weights an :class:`~skbpr.Interactions` holds, or
        the entries of ``X``) count in training. Each positive gets the
        confidence ``c = t(w) / mean(t(w))`` (mean over the training
        positives of ``fit``, so that the average positive counts 1 and the
        learning rate keeps its meaning; ``partial_fit`` keeps that mean,
        ``confidence_scale_``), which multiplies that positive's term of the
        loss, with every loss (for ``warp``, its rank-weighted term); the L2
        penalty is not weighted. ``none``: every positive counts 1, values
        are ignored (with a ``UserWarning`` when they are not all 1);
        ``log``: ``t(w) = log(1 + w)``, which tames heavy-tailed counts;
        ``linear``: ``t(w) = w``; a callable gets the float64 weights and
        returns ``t(w)`` (same shape, finite, >= 0). Data whose values are
        all equal (binary data) trains exactly as with ``none``, bit for
        bit. The default is ``log``: on Last.fm play counts it raised
        NDCG@10 by about 5 % over ``none`` (``linear`` lowered it by 8 %;
        ``benchmarks/weights.py``, ``docs/guide.md``). The confidences used
        are in ``confidences_``.
    n_negatives : int or "auto", default="auto"
        Negatives drawn per positive for ``bpr``, ``logistic``, ``hinge`` and
        callables (their losses average over them). ``"auto"``: the loss's
        default (16 for ``bpr``, ``logistic`` and callables, 1 for
        ``hinge``; WARP draws ``max_sampled`` candidates instead), resolved
        in ``fit`` into ``n_negatives_``. One uniform negative per positive
        leaves most of a large catalogue unseen by a user in 50 epochs; see
        :mod:`skbpr.training.defaults`.
    max_sampled : int or "auto", default="auto"
        WARP: the most candidates drawn per positive in search of one that
        violates the margin. ``"auto"``: 30 (the other losses ignore it),
        resolved in ``fit`` into ``max_sampled_``.
    shared_negatives : int or "auto", default="auto"
        Shared negatives: ``S > 0`` scores each batch of positives against
        one set of ``S`` items drawn for the whole batch (with replacement),
        one dense product per batch, instead of ``n_negatives`` draws per
        positive: many negatives for the cost of a few. A shared item that is
        one of a user's training positives is left out of that user's
        negatives, and each positive's loss averages over the shared items
        left (``bpr``, ``logistic``, ``hinge``) or sums over them in its
        denominator (``softmax``). ``bpr``, ``logistic``, ``hinge`` and
        ``softmax`` only; ``negatives`` must be ``"uniform"`` or ``"auto"``
        (implicit negatives are not drawn) and training is deterministic
        whatever ``deterministic`` says. 0: per-positive negatives.
        ``"auto"``: the loss's default (64 for ``softmax``, with batches of
        256; 0 for the others), resolved in ``fit`` into
        ``shared_negatives_``.
    shared_sampling : {"uniform", "popularity"}, default="uniform"
        How shared negatives are drawn: uniformly over the catalogue, or in
        proportion to each item's training positives plus one. With
        ``popularity`` the softmax subtracts from each shared item's logit
        the log of its sampling probability relative to uniform draws (the
        log-Q correction), so that popular items are not pushed down for
        being drawn often. Needs ``shared_negatives > 0``.
    sigma : float, default=1.0
        BPR sharpness: ``-log sigmoid(sigma * (pos - neg))``; for
        ``softmax``, the inverse temperature (logits ``sigma * score``).
    margin : float, default=1.0
        Margin of the ``hinge`` and ``warp`` losses.
    user_features_mode, item_features_mode : {"identity", "features", "both"}, default="both"
        ``identity``: one embedding per user (item), features ignored;
        ``features``: the given features alone; ``both``: features plus an
        identity column per row. Without given features, identity is used.
    optimizer : {"adagrad", "adam", "sgd"}, default="adagrad"
        Sparse-row optimiser: only the rows a batch touched are updated.
    learning_rate : float or "auto", default="auto"
        Step size of the optimiser (for a loss averaged over the batch).
        ``"auto"``: the loss's default (0.1; 0.02 for ``warp`` and
        ``softmax``), resolved in ``fit`` into ``learning_rate_``.
    alpha : float or "auto", default="auto"
        L2 penalty on the representations a batch uses (per occurrence);
        for ``ials``, the weight lambda of the L2 penalty on the table rows.
        ``"auto"``: the loss's default (0.01; 0 for ``warp``; 5 for
        ``ials``), resolved in ``fit`` into ``alpha_``.
    init_std : float or "auto", default="auto"
        Standard deviation of the initial embeddings. ``"auto"``: 0.1; 0.01
        for ``warp``; resolved into ``init_std_``.
    epochs : int, default=50
        Passes over the training positives.
    batch_size : int or "auto", default="auto"
        Positives per optimisation step. ``"auto"``: 4096; 1 for ``warp``:
        one positive per step, so that each positive's search for a
        violating candidate sees the weights the previous one left
        (LightFM's sequential WARP). The compiled kernel runs such small
        batches on one thread; the torch engine takes a step per positive,
        which is slow: set a larger ``batch_size`` (and ``learning_rate``)
        for WARP on a GPU. 256 for ``softmax``: with shared negatives an
        item is pushed down once per batch it is drawn in, so smaller
        batches reach more of the catalogue. Resolved into ``batch_size_``.
    initial_accumulator : float or "auto", default="auto"
        Adagrad: where its per-coordinate sums of squared gradients start
        (``torch.optim.Adagrad``'s ``initial_accumulator_value``), in units
        of one positive's squared gradient: the sums start at
        ``initial_accumulator / batch_size**2``, as the batch mean divides
        each positive's gradient by ``batch_size``. 1 damps the first steps
        of rarely seen rows, as LightFM's Adagrad does. ``"auto"``: 0; 1 for
        ``warp``; resolved into ``initial_accumulator_``. Ignored by the
        other optimisers.
    unobserved_weight : float or "auto", default="auto"
        ``loss="ials"``: the weight ``w0`` of every (user, item) pair's
        squared score, relative to the positives' confidences (whose mean
        is 1); it plays the part of ``1 / alpha`` for implicit's ALS
        confidence ``1 + alpha * r`` (see ``docs/guide.md``). ``"auto"``: 0.1 for ``ials``, ``None``
        (unused) for the other losses; resolved into ``unobserved_weight_``.
    reg_exponent : float or "auto", default="auto"
        ``loss="ials"``: the L2 penalty of a table row is ``alpha *
        n^reg_exponent * ||w||^2`` with ``n`` the row's positives plus
        ``unobserved_weight`` times the size of the other side; 0 is the
        plain penalty ``alpha * ||w||^2``, 1 the frequency-scaled one of
        the iALS revisit of 2021 (see ``docs/guide.md``). In [0, 2].
        ``"auto"``: 0 for ``ials``, ``None`` (unused) for the other losses;
        resolved into ``reg_exponent_``.

        Every ``"auto"`` takes its loss's row of
        :data:`skbpr.training.defaults.LOSS_DEFAULTS` (a loss callable takes
        ``bpr``'s); a value given is always used as it is. WARP's row was
        chosen with ``benchmarks/warp.py`` and reaches LightFM's WARP on
        MovieLens 100K and Last.fm (``docs/benchmarks.md``).
    eval_metric : str, default="ndcg@10"
        Metric watched for early stopping (an accuracy metric of
        :mod:`skbpr.metrics`: greater is better). Callbacks ask for more
        metrics on evaluation epochs through their ``metrics`` attribute.
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
        sets another share. An explicit ``n_threads`` is cut to the budget
        the process has when the fit starts (torch's thread count then, at
        most one per CPU it may run on: :func:`skbpr.training.thread_budget`),
        so inside such a worker, or under a ``threadpoolctl`` limit, it takes
        its share rather than oversubscribing the cores. The compiled kernel
        uses as many threads (``n_threads_`` says how many ran).
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
    best_epoch_ : int or None
        The epoch of the best validation score (``None`` without
        validation). Early stopping (``patience``) restores its weights
        with its optimiser state (Adagrad's sums, Adam's moments and step
        count), so that a later ``partial_fit`` continues from that epoch.
    train_positives_ : scipy.sparse.csr_matrix
        Training positives, removed from rankings by ``recommend`` and the
        scorers: after ``partial_fit``, those of every batch trained on since
        the last ``fit`` (in a grown id space too), a batch's weight
        replacing an earlier one's for a pair it repeats.
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
    confidences_ : scipy.sparse.csr_matrix
        The confidence each training positive had when last trained on (in
        ``fit``, or in the latest ``partial_fit`` batch holding it:
        ``t(w) / confidence_scale_``, not renormalised per batch), with the
        pattern of ``train_positives_``: 1 everywhere with
        ``weighting="none"`` or binary data, 0 for the positives of users
        that could not be trained (every item a positive).
    confidence_scale_ : float
        The normaliser of the confidences: the mean of ``t(w)`` over the
        positives ``fit`` trained (or the first ``partial_fit`` of an
        unfitted model); 1.0 with ``weighting="none"``. Later
        ``partial_fit`` batches divide by it, so that equal weights keep the
        confidence they had in ``fit``.
    learning_rate_, alpha_, init_std_, initial_accumulator_ : float
        The values the last fit used: the parameter, or the loss's default
        (:func:`skbpr.training.defaults.loss_defaults`) where it is
        ``"auto"``.
    n_negatives_, batch_size_, max_sampled_, shared_negatives_ : int
        Resolved likewise (``None`` where the loss does not use them).
    unobserved_weight_, reg_exponent_ : float or None
        Resolved likewise: numbers for ``ials``, ``None`` for the others.
    n_threads_ : int
        The threads the last epoch trained on: ``n_threads`` within the
        process's thread budget (see ``n_threads``); the compiled kernel's
        deterministic mode runs fewer on batches too small to share (64
        samples per thread at least). 0 when no epoch ran.
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
        weighting: Weighting = "log",
        n_negatives: int | str = "auto",
        max_sampled: int | str = "auto",
        shared_negatives: int | str = "auto",
        shared_sampling: str = "uniform",
        sigma: float = 1.0,
        margin: float = 1.0,
        user_features_mode: str = "both",
        item_features_mode: str = "both",
        optimizer: str = "adagrad",
        learning_rate: float | str = "auto",
        alpha: float | str = "auto",
        init_std: float | str = "auto",
        epochs: int = 50,
        batch_size: int | str = "auto",
        initial_accumulator: float | str = "auto",
        unobserved_weight: float | str = "auto",
        reg_exponent: float | str = "auto",
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
        self.weighting = weighting
        self.n_negatives = n_negatives
        self.max_sampled = max_sampled
        self.shared_negatives = shared_negatives
        self.shared_sampling = shared_sampling
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
        self.initial_accumulator = initial_accumulator
        self.unobserved_weight = unobserved_weight
        self.reg_exponent = reg_exponent
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

    def _validate_params(self) -> None:
        check_model_params(self)  # and the float32 range of the initial model
        check_training_params(self)

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
            Its values are interaction weights, used as ``weighting`` says
            (``"none"``: treated as binary, with a ``UserWarning`` when they
            are not all 1).
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
        self._fit_entry(X, Rneg, user_features, item_features, eval_set)
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
            weights and optimiser state, and ``history_`` continues. The
            positives' confidences are ``t(w) / confidence_scale_``, the
            normaliser of the fit this continues, not of this batch.

            The model remembers every batch: ``train_positives_`` and
            ``confidences_`` hold the union of the positives trained on since
            the last ``fit``, so ``recommend(exclude_seen=True)``, ``score``
            and the evaluation leave out earlier batches' positives too, and
            the negative sampler never draws them. A pair the batch repeats
            takes the batch's weight and confidence (the newer value
            replaces the older: pass summed weights to accumulate counts).

        Returns
        -------
        self : HybridBPR

        Raises
        ------
        ValueError
            When the data cannot continue the fitted model: fewer users or
            items, other feature columns, ``n_components``, feature modes or
            ``weighting``. The model is left untouched.
        """
        self._partial_fit_entry(X, Rneg, user_features, item_features)
        return self

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
        return ndcg_at_k(self, X, k=10)
