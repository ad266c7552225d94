"""Negative samplers: exact uniform non-positives, implicit and mixed draws."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skbpr.training.sampling import NegativeSampler


def _csr(dense) -> sp.csr_matrix:
    matrix = sp.csr_matrix(np.asarray(dense, dtype=np.float32))
    matrix.sort_indices()
    return matrix


def _rows(n_users: int, n_items: int, rows: dict[int, list[int]]) -> sp.csr_matrix:
    dense = np.zeros((n_users, n_items), dtype=np.float32)
    for user, items in rows.items():
        dense[user, items] = 1.0
    return _csr(dense)


def _draw(sampler: NegativeSampler, user: int, n_rows: int, n: int, seed: int = 0) -> np.ndarray:
    users = torch.full((n_rows,), user, dtype=torch.int64)
    return sampler.sample(users, n, seed).numpy()


def _chi_square(counts: np.ndarray) -> float:
    expected = counts.sum() / counts.size
    return float(((counts - expected) ** 2 / expected).sum())


# ----------------------------------------------------------------- uniform
def test_uniform_excludes_positives_and_is_uniform_over_the_rest():
    positives = _rows(3, 12, {0: [1, 4, 5, 9], 1: [0, 11], 2: []})
    sampler = NegativeSampler(positives)
    for user, pos in [(0, {1, 4, 5, 9}), (1, {0, 11}), (2, set())]:
        draws = _draw(sampler, user, 1000, 12, seed=user).ravel()
        assert draws.min() >= 0 and draws.max() < 12
        assert not set(draws.tolist()) & pos
        candidates = sorted(set(range(12)) - pos)
        assert sorted(set(draws.tolist())) == candidates
        counts = np.bincount(draws, minlength=12)[candidates]
        # chi-square with len(candidates) - 1 <= 11 dof: 40 is far in the tail (p < 1e-4)
        assert _chi_square(counts) < 40.0
        assert np.allclose(counts / counts.sum(), 1 / len(candidates), atol=0.01)


def test_uniform_mixed_batch_of_users():
    positives = _rows(4, 9, {0: [0, 1, 2, 3, 4, 5, 6, 7], 1: [8], 2: [0, 2, 4, 6, 8], 3: [3]})
    sampler = NegativeSampler(positives)
    users = torch.tensor([0, 1, 2, 3, 0, 2] * 200)
    draws = sampler.uniform(users, 5, 1).numpy()
    assert draws.shape == (1200, 5)
    dense = positives.toarray() > 0
    assert not dense[users.numpy()[:, None], draws].any()
    # user 0 has a single candidate: item 8
    assert np.all(draws[users.numpy() == 0] == 8)
    assert set(draws[users.numpy() == 2].ravel().tolist()) == {1, 3, 5, 7}


def test_users_without_candidates():
    positives = _rows(3, 4, {0: [0, 1, 2, 3], 1: [2], 2: [0, 1, 2, 3]})
    sampler = NegativeSampler(positives)
    assert sampler.users_without_candidates.tolist() == [0, 2]


# ---------------------------------------------------------------- implicit
def test_implicit_draws_only_from_rneg_row():
    positives = _rows(3, 10, {0: [0, 1], 1: [5], 2: [9]})
    negatives = _rows(3, 10, {0: [2, 7], 2: [3, 4, 5]})
    sampler = NegativeSampler(positives, negatives, mode="implicit")
    draws0 = _draw(sampler, 0, 500, 4).ravel()
    assert set(draws0.tolist()) == {2, 7}
    assert abs((draws0 == 2).mean() - 0.5) < 0.05
    draws2 = _draw(sampler, 2, 500, 4).ravel()
    assert set(draws2.tolist()) == {3, 4, 5}
    # user 1 has no implicit negatives: uniform over its non-positives
    draws1 = _draw(sampler, 1, 1000, 9).ravel()
    assert 5 not in draws1
    assert sorted(set(draws1.tolist())) == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert _chi_square(np.bincount(draws1, minlength=10)[[0, 1, 2, 3, 4, 6, 7, 8, 9]]) < 40.0


def test_implicit_mode_without_negatives_is_uniform():
    positives = _rows(2, 6, {0: [1], 1: [2, 3]})
    users = torch.tensor([0, 1, 1, 0])
    a = NegativeSampler(positives, None, mode="implicit").sample(users, 3, 4)
    b = NegativeSampler(positives, mode="uniform").sample(users, 3, 4)
    assert torch.equal(a, b)


def test_uniform_mode_ignores_negatives():
    positives = _rows(1, 30, {0: [0]})
    negatives = _rows(1, 30, {0: [1]})
    draws = _draw(NegativeSampler(positives, negatives, mode="uniform"), 0, 300, 10).ravel()
    assert (draws == 1).mean() < 0.1
    assert len(set(draws.tolist())) == 29


# ------------------------------------------------------------------- mixed
@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.8, 1.0])
def test_mixed_fraction_of_implicit_draws(ratio):
    n_items = 50
    positives = _rows(2, n_items, {0: list(range(10, 20)), 1: [0]})
    negatives = _rows(2, n_items, {0: [0, 1]})
    sampler = NegativeSampler(positives, negatives, mode="mixed", implicit_ratio=ratio)
    draws = _draw(sampler, 0, 2000, 10, seed=7).ravel()
    assert not np.isin(draws, np.arange(10, 20)).any()
    in_rneg = np.isin(draws, [0, 1]).mean()
    p_uniform_hits = 2 / 40  # 40 non-positives, 2 of them in Rneg
    expected = ratio + (1 - ratio) * p_uniform_hits
    # 20000 draws: standard error below 0.004
    assert abs(in_rneg - expected) < 0.015
    if ratio == 1.0:
        assert in_rneg == 1.0
    # the user without implicit negatives always gets uniform draws
    draws1 = _draw(sampler, 1, 500, 10, seed=8).ravel()
    assert 0 not in draws1 and len(set(draws1.tolist())) == n_items - 1


# ------------------------------------------------------------- determinism
@pytest.mark.parametrize("mode", ["uniform", "implicit", "mixed"])
def test_same_seed_same_draws(mode):
    rng = np.random.default_rng(0)
    dense = rng.random((20, 30)) < 0.2
    neg = (rng.random((20, 30)) < 0.2) & ~dense
    sampler = NegativeSampler(_csr(dense), _csr(neg), mode=mode)
    users = torch.as_tensor(rng.integers(0, 20, size=64))
    a = sampler.sample(users, 5, 123)
    b = sampler.sample(users, 5, 123)
    c = sampler.sample(users, 5, 124)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.dtype == torch.int64 and a.shape == (64, 5)


def test_invalid_mode_raises():
    with pytest.raises(ValueError, match="'nope'"):
        NegativeSampler(_rows(1, 3, {0: [0]}), mode="nope")


# ---------------------------------------------------------------- property
@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    dense=st.integers(1, 6).flatmap(
        lambda n_users: st.integers(1, 10).flatmap(
            lambda n_items: hnp.arrays(np.bool_, (n_users, n_items), elements=st.booleans())
        )
    ),
    n=st.integers(1, 6),
    seed=st.integers(0, 2**31 - 1),
)
def test_uniform_never_returns_positives(dense, n, seed):
    n_users, n_items = dense.shape
    sampler = NegativeSampler(_csr(dense))
    full = np.flatnonzero(dense.all(axis=1))
    assert sampler.users_without_candidates.tolist() == full.tolist()
    users = np.setdiff1d(np.arange(n_users), full)
    if users.size == 0:
        return
    users = np.repeat(users, 3)
    draws = sampler.uniform(torch.as_tensor(users), n, seed).numpy()
    assert draws.shape == (users.size, n)
    assert draws.min() >= 0 and draws.max() < n_items
    assert not dense[users[:, None], draws].any()


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    cells=st.integers(1, 6).flatmap(
        lambda n_users: st.integers(2, 10).flatmap(
            lambda n_items: hnp.arrays(np.int8, (n_users, n_items), elements=st.integers(0, 2))
        )
    ),
    seed=st.integers(0, 2**31 - 1),
)
def test_implicit_draws_only_rneg_items_or_uniform_non_positives(cells, seed):
    """0 = unseen, 1 = positive, 2 = implicit negative: implicit mode draws Rneg where a user has any."""
    positive, negative = cells == 1, cells == 2
    n_users, n_items = cells.shape
    sampler = NegativeSampler(_csr(positive), _csr(negative), mode="implicit")
    users = np.setdiff1d(np.arange(n_users), sampler.users_without_candidates)
    if users.size == 0:
        return
    users = np.repeat(users, 4)
    draws = sampler.sample(torch.as_tensor(users), 3, seed).numpy()
    has_rneg = negative[users].any(axis=1)
    assert negative[users[has_rneg][:, None], draws[has_rneg]].all()
    assert not positive[users[:, None], draws].any()
