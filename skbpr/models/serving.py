"""Serving of :class:`~skbpr.models.hybrid.HybridBPR`: representations, scores, recommendations."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils.validation import check_is_fitted

from skbpr.training.model import FeatureMap, HybridFactorization
from skbpr.utils.validation import check_indices, check_number, invalid


class ServingMixin:
    """What a fitted HybridBPR answers: embeddings, ``predict``, ``recommend``, ``similar_items`` (a mixin)."""

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
        if n_cand == 0:  # nothing to rank: say so rather than "k must be an integer in [1, 0]"
            if items is not None:
                raise invalid("items", "a non-empty list of candidate item indices", items, shown="an empty list")
            shape = f"a matrix of shape {tuple(item_features.shape)}"
            raise invalid(
                "item_features", "a matrix with one row per new item, at least one", item_features, shown=shape
            )
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
