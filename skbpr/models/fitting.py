"""Fit set-up of :class:`~skbpr.models.hybrid.HybridBPR`: from the data to a training problem.

Checks that need the data (the metric's cutoff, the evaluation set), warm
starts and grown id spaces, the feature maps, and the
:class:`~skbpr.training.TrainingProblem` handed to an engine.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils import check_random_state

from skbpr.data.folds import was_split
from skbpr.data.interactions import Interactions
from skbpr.evaluation.holdout import train_test_split
from skbpr.evaluation.names import parse_metric
from skbpr.models.base import check_interaction_matrix, ignore_target, warn_if_weighted
from skbpr.models.params import check_table_memory
from skbpr.training import TrainingProblem, make_optimizer, resolve_device, torch_threads
from skbpr.training.callbacks import Callback
from skbpr.training.defaults import AUTO_PARAMS, loss_defaults, resolve
from skbpr.training.engine import Engine, choose_backend
from skbpr.training.model import FeatureMap, HybridFactorization, build_feature_matrix
from skbpr.training.sampling import users_without_candidates
from skbpr.training.weighting import confidences

# parameters of the sampled losses that are no "auto" entry of the defaults table
_SAMPLING_ONLY = ("optimizer", "negatives", "implicit_ratio", "sigma", "margin", "deterministic")


def search_context(data: Any, made_by_search: bool = False) -> dict[str, Any]:
    """Where a fit stands in a cross-validation, from the data's provenance (see :mod:`skbpr.data.folds`).

    ``fold``: ``(split, n_splits)`` when ``data`` is the training part of a
    split of skbpr's splitters; ``whole``: ``True`` when an estimator a
    search made (``made_by_search``: a clone of a clone) fits a container
    such a splitter split in this process, as a search's final refit does. A
    plain fit of a split container is not ``whole``.
    """
    fold = getattr(data, "fold", None)
    return {"fold": fold, "whole": fold is None and made_by_search and was_split(data)}


class FittingMixin:
    """The fit set-up of HybridBPR (a mixin; the estimator's parameters are its attributes)."""

    def __sklearn_clone__(self) -> Any:
        """The copy ``sklearn.base.clone`` makes, counting the clones between it and the user's estimator.

        A scikit-learn search clones the estimator it is given (the base)
        and fits clones of the base: two clones deep. The count, not the
        data, tells a search's refit from a plain fit of the same container
        (:func:`search_context`).
        """
        twin = super().__sklearn_clone__()  # type: ignore[misc]
        twin._clone_depth = getattr(self, "_clone_depth", 0) + 1
        return twin

    def _made_by_search(self) -> bool:
        return getattr(self, "_clone_depth", 0) >= 2

    def _fit_entry(self, X: Any, Rneg: Any, user_features: Any, item_features: Any, eval_set: Any) -> None:
        """The work of ``fit``: check, split off a validation set if asked, train from scratch (or warm)."""
        data = self._as_interactions(X, Rneg, user_features, item_features)
        self._validate_params()
        eval_data = self._check_eval_set(eval_set, data)
        if eval_data is not None or self.validation_fraction is not None:
            self._check_eval_metric(data.n_items)
        device = resolve_device(self.device)
        self._check_memory(data, device)
        self._warn_if_weighted(data)
        self.callbacks_ = self._copy_callbacks()
        search = search_context(data, self._made_by_search())  # before a validation split makes data another one
        if eval_data is None and self.validation_fraction is not None:
            data, eval_data = train_test_split(
                data,
                test_size=self.validation_fraction,
                random_state=check_random_state(self.random_state).randint(2**31),
            )
        with torch_threads(self.n_threads):
            self._fit(data, eval_data, device, self.epochs, reset=not self.warm_start, search=search, scale=None)
        self.n_features_in_ = self.n_items_

    def _partial_fit_entry(self, X: Any, Rneg: Any, user_features: Any, item_features: Any) -> None:
        """The work of ``partial_fit``: check that the data continues the model, train one epoch."""
        data = self._as_interactions(X, Rneg, user_features, item_features)
        self._validate_params()
        device = resolve_device(self.device)
        fitted = hasattr(self, "model_")
        changes = self._incompatibilities(data) if fitted else []
        scale = self._continued_confidence_scale(changes) if fitted else None
        if changes:
            raise ValueError(
                f"partial_fit cannot continue the fitted model: {'; '.join(changes)}. "
                "Call fit to train a new model on this data"
            )
        self._check_memory(data, device)
        self._warn_if_weighted(data)
        if not hasattr(self, "model_") or not hasattr(self, "callbacks_"):
            self.callbacks_ = self._copy_callbacks()
        with torch_threads(self.n_threads):
            search = search_context(data, self._made_by_search())
            self._fit(data, None, device, 1, reset=False, search=search, scale=scale, accumulate=True)
        self.n_features_in_ = self.n_items_

    def _check_memory(self, data: Any, device: torch.device) -> None:
        """The tables ``data`` needs (and their optimiser state) must fit in ``device``'s memory; before any work."""
        user_rows = self._table_rows(data.user_features, data.n_users, self.user_features_mode)
        item_rows = self._table_rows(data.item_features, data.n_items, self.item_features_mode)
        space = f"; the data has {data.n_users} users and {data.n_items} items"
        check_table_memory(self, user_rows, item_rows, device, data=space)

    def _continued_confidence_scale(self, changes: list[str]) -> float | None:
        """The normaliser ``partial_fit`` keeps: ``confidence_scale_``, measured by the fit it continues.

        Appends to ``changes`` when ``weighting`` is not the one that measured
        it (its mean is of another transform's values). ``None``, with a
        ``UserWarning``, for a model fitted before skbpr recorded the scale:
        the batch is then normalised on its own mean, as those versions did.
        """
        scale = getattr(self, "confidence_scale_", None)
        if scale is None:
            warnings.warn(
                f"this {type(self).__name__} was fitted without recording confidence_scale_ (by an older skbpr): "
                "partial_fit normalises this batch's confidences on its own mean and records that mean for "
                "later batches; call fit to measure it on the full data",
                UserWarning,
                stacklevel=4,
            )
            return None
        old, new = self._confidence_weighting, self.weighting
        if not (old is new or (isinstance(old, str) and isinstance(new, str) and old == new)):
            changes.append(
                f"weighting went from {old!r} to {new!r} (confidence_scale_={scale!r} is the mean of the former's "
                "t(w), meaningless for the latter)"
            )
        return scale

    def _warn_if_weighted(self, data: Any) -> None:
        used = not (isinstance(self.weighting, str) and self.weighting == "none")
        hint = "" if used else "weighting='log' uses the positives' values as confidences"
        warn_if_weighted(data, type(self).__name__, positives_used=used, hint=hint)

    def _is_ials(self) -> bool:
        """Whether the loss is the all-pairs squared loss, solved in blocks rather than sampled."""
        return isinstance(self.loss, str) and self.loss == "ials"

    def _warn_unused_negatives(self, negatives: sp.csr_matrix | None) -> None:
        """``loss="ials"`` takes no implicit negatives nor sampling settings: say so when some are given."""
        row = loss_defaults("ials")
        given = [
            f"{name}={getattr(self, name)!r}"
            for name in AUTO_PARAMS
            if row[name] is None and getattr(self, name) is not None and getattr(self, name) != "auto"
        ]
        defaults = type(self)().get_params(deep=False)
        given += [f"{name}={getattr(self, name)!r}" for name in _SAMPLING_ONLY if getattr(self, name) != defaults[name]]
        if given:
            warnings.warn(
                f"loss='ials' samples nothing and has no optimiser step: {', '.join(given)} "
                "are ignored (leave them at 'auto')",
                UserWarning,
                stacklevel=4,
            )
        if negatives is not None and negatives.nnz:
            warnings.warn(
                f"loss='ials' does not use the {negatives.nnz} implicit negatives (Rneg): every pair that is not "
                "a training positive already counts as a negative, with weight unobserved_weight; the negatives "
                "and implicit_ratio parameters are ignored too",
                UserWarning,
                stacklevel=4,
            )

    def _resolved(self) -> dict[str, Any]:
        """The parameters of ``AUTO_PARAMS`` with ``"auto"`` replaced by the loss's default."""
        return resolve(self.loss, **{name: getattr(self, name) for name in AUTO_PARAMS})

    def _check_eval_metric(self, n_items: int) -> None:
        """``eval_metric`` is an accuracy metric (higher is better) whose cutoff does not exceed the number of items."""
        metric = parse_metric(self.eval_metric)
        if metric.beyond_accuracy:
            raise ValueError(
                f"eval_metric={self.eval_metric!r} describes the lists, not their hits, and early stopping keeps "
                "the highest value; watch an accuracy metric (ndcg@10, recall@10...) and ask MLflowCallback("
                f"metrics=[{self.eval_metric!r}]) to record this one"
            )
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

    def _as_interactions(self, X: Any, Rneg: Any, user_features: Any, item_features: Any) -> Any:
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
        resolved = self._resolved()
        # where a new row's optimiser state starts (see _fit); "ials" has no optimiser state
        start = {}
        if not self._is_ials():
            start = {"sum_sq": float(resolved["initial_accumulator"]) / float(resolved["batch_size"]) ** 2}
        for side, rows in enumerate((user_rows, item_rows)):
            old = weights[side].shape[0]
            if rows == old:
                continue
            init = torch.Generator().manual_seed(int(self._seed) * 1_000_003 + 2 * old + side)
            fresh = torch.randn((rows - old, weights[side].shape[1]), generator=init) * resolved["init_std"]
            if side == 1:
                fresh[:, -1] = 0.0  # biases start at zero, as in a fresh model
            weights[side] = torch.cat([weights[side], fresh.to(weights[side])])
            if states[side] is not None:
                states[side] = {
                    key: torch.cat([value, value.new_full((rows - old, *value.shape[1:]), start.get(key, 0.0))])
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
        self,
        data: Any,
        eval_data: Any,
        device: torch.device,
        epochs: int,
        *,
        reset: bool,
        search: dict[str, Any],
        scale: float | None,
        accumulate: bool = False,
    ) -> None:
        """Train ``epochs`` epochs; ``scale``: the confidences' normaliser, ``None`` to measure it on ``data``.

        ``accumulate`` (``partial_fit``): the fitted model's positives stay
        seen, in ``train_positives_`` and ``confidences_`` and for the
        negative sampler, with this batch's (newer) weight and confidence
        where the batch repeats a pair.
        """
        backend = choose_backend(self.backend, device, self.loss, deterministic=self.deterministic)
        batch = data.positives
        earlier = self._earlier_positives(batch.shape) if accumulate and hasattr(self, "train_positives_") else None
        positives = batch if earlier is None else _latest_union(earlier[0], batch)
        negatives = data.negatives
        mode = self.negatives
        shared = int(self._resolved()["shared_negatives"] or 0)  # None: "ials" draws nothing
        if mode == "auto":
            mode = "mixed" if negatives is not None and negatives.nnz and not shared else "uniform"
        user_matrix = build_feature_matrix(data.user_features, data.n_users, self.user_features_mode)
        item_matrix = build_feature_matrix(data.item_features, data.n_items, self.item_features_mode)
        user_map = FeatureMap(user_matrix, data.n_users, device)
        item_map = FeatureMap(item_matrix, data.n_items, device)
        self._check_feature_rows(user_matrix, "user_features", "user_features_mode")
        self._check_feature_rows(item_matrix, "item_features", "item_features_mode")
        coo = batch.tocoo()
        users = torch.as_tensor(coo.row.astype(np.int64), device=device)
        items = torch.as_tensor(coo.col.astype(np.int64), device=device)
        ials = self._is_ials()
        if ials:
            self._warn_unused_negatives(negatives)
        # "ials" draws no negative: a user with every item still has its squared-loss terms; the
        # sampled losses draw around everything seen
        full = users_without_candidates(positives) if not ials else np.empty(0, dtype=np.int64)
        keep = np.ones(coo.nnz, dtype=bool)
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
        # raises for a bad callable (or weights that overflow the scale), before any change
        trained, scale = confidences(coo.data[keep], self.weighting, scale, return_scale=True)
        confidence = np.zeros(coo.nnz, dtype=np.float32)
        confidence[keep] = trained
        batch_confidences = sp.csr_matrix((confidence, batch.indices.copy(), batch.indptr.copy()), shape=batch.shape)
        if earlier is None:
            seen_confidences = batch_confidences
        else:
            seen_confidences = _latest_union(earlier[1], batch_confidences)
            seen_confidences.data[np.repeat(np.isin(np.arange(batch.shape[0]), full), np.diff(positives.indptr))] = 0
        weights = None if np.all(trained == 1) else torch.as_tensor(trained, device=device)

        fresh = self._grow_or_reset(data, reset)
        resolved = self._resolved()
        for name in AUTO_PARAMS:  # the values this fit uses: learning_rate_, alpha_, ...
            setattr(self, f"{name}_", resolved[name])
        if fresh:
            self._seed = int(check_random_state(self.random_state).randint(2**31 - 1))
            init = torch.Generator().manual_seed(self._seed)
            model = HybridFactorization(
                user_map.n_features,
                item_map.n_features,
                self.n_components,
                init_std=float(self.init_std_),
                generator=init,
            )
            self.history_ = []
            self._optimizer_state = (None, None)
        else:
            model = self.model_
        model = model.to(device)
        opt_u = opt_i = None  # the block solver of "ials" has no optimiser
        if not ials:
            # in units of one positive's squared gradient, which the batch mean divides by batch_size
            start = float(self.initial_accumulator_) / float(self.batch_size_) ** 2
            opt_u, opt_i = (
                make_optimizer(self.optimizer, weight, float(self.learning_rate_), start)
                for weight in (model.user_weight.data, model.item_weight.data)
            )
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
            alpha=float(self.alpha_),
            draws_per_sample=0 if ials else int(self.max_sampled_ if self.loss == "warp" else self.n_negatives_),
            batch_size=0 if ials else int(self.batch_size_),
            weights=weights,
            unobserved_weight=float(self.unobserved_weight_) if ials else 0.0,
            reg_exponent=float(self.reg_exponent_) if ials else 0.0,
            shared_negatives=int(self.shared_negatives_ or 0),
            shared_sampling=self.shared_sampling,
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
        self.confidences_ = seen_confidences
        self.confidence_scale_, self._confidence_weighting = scale, self.weighting
        self.negatives_ = mode
        self.device_ = device
        # the live state: kept whatever the epochs do
        self._optimizer_state = (None, None) if ials else (opt_u.state, opt_i.state)
        try:
            self._run_epochs(engine, epochs, data, eval_data, search)
        finally:
            self.n_threads_ = engine.threads_used

    def _earlier_positives(self, shape: tuple[int, int]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """``train_positives_`` and ``confidences_`` of the fitted model, in a grown id space of ``shape``."""
        out = []
        for matrix in (self.train_positives_, self.confidences_):
            matrix = sp.csr_matrix(matrix)
            indptr = np.concatenate([matrix.indptr, np.full(shape[0] - matrix.shape[0], matrix.indptr[-1])])
            out.append(sp.csr_matrix((matrix.data, matrix.indices, indptr), shape=shape))
        return out[0], out[1]

    def _check_feature_rows(self, matrix: sp.csr_matrix | None, name: str, mode_name: str) -> None:
        if matrix is None:
            return
        empty = np.flatnonzero(np.diff(matrix.indptr) == 0)
        if empty.size:
            raise ValueError(
                f"{name} has {empty.size} rows with no feature at all (first: {empty[:5].tolist()}) "
                f"and {mode_name}='features' adds no identity column; use {mode_name}='both'"
            )


def _latest_union(earlier: sp.csr_matrix, latest: sp.csr_matrix) -> sp.csr_matrix:
    """The pairs of both matrices (same shape), with ``latest``'s value where both hold a pair; sorted CSR."""
    old, new = earlier.tocoo(), latest.tocoo()
    n_items = np.int64(earlier.shape[1])
    old_keys = old.row.astype(np.int64) * n_items + old.col
    keep = ~np.isin(old_keys, new.row.astype(np.int64) * n_items + new.col)
    rows = np.concatenate([old.row[keep], new.row])
    cols = np.concatenate([old.col[keep], new.col])
    values = np.concatenate([old.data[keep], new.data]).astype(latest.dtype)
    union = sp.csr_matrix((values, (rows, cols)), shape=latest.shape)
    union.sort_indices()
    return union
