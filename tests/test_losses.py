"""Loss values, closed-form gradients and WARP's candidate choice."""

from __future__ import annotations

import math

import pytest
import torch

from skbpr.losses import (
    PAIRWISE_LOSSES,
    autograd_grad,
    bpr,
    bpr_grad,
    hinge,
    hinge_grad,
    logistic,
    logistic_grad,
    resolve_loss,
    warp,
    warp_grad,
    warp_weights,
)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _random_scores(b: int, m: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    pos = torch.randn(b, generator=gen, dtype=torch.float64)
    neg = torch.randn((b, m), generator=gen, dtype=torch.float64)
    return pos, neg


# ---------------------------------------------------------------- values
def test_bpr_value_by_hand():
    pos, neg = _t([1.0, 0.0]), _t([[0.0], [1.0]])
    expected = (-math.log(_sigmoid(2.0)) - math.log(_sigmoid(-2.0))) / 2
    assert bpr(pos, neg, sigma=2.0).item() == pytest.approx(expected, rel=1e-12)
    assert bpr_grad(pos, neg, sigma=2.0)[0].item() == pytest.approx(expected, rel=1e-12)
    # sigma=1 gives a different value: the parameter is used
    assert bpr(pos, neg).item() == pytest.approx((-math.log(_sigmoid(1.0)) - math.log(_sigmoid(-1.0))) / 2)


def test_bpr_value_averages_over_all_negatives():
    pos, neg = _t([0.5, -1.0]), _t([[0.0, 1.0, 2.0], [-3.0, 0.0, 0.5]])
    terms = [-math.log(_sigmoid(p - n)) for p, row in zip([0.5, -1.0], neg.tolist(), strict=True) for n in row]
    assert bpr(pos, neg).item() == pytest.approx(sum(terms) / 6, rel=1e-12)
    assert bpr_grad(pos, neg)[0].item() == pytest.approx(sum(terms) / 6, rel=1e-12)


def test_logistic_value_by_hand():
    pos, neg = _t([1.0, 0.0]), _t([[0.0], [1.0]])
    pos_part = (-math.log(_sigmoid(1.0)) - math.log(_sigmoid(0.0))) / 2
    neg_part = (-math.log(_sigmoid(-0.0)) - math.log(_sigmoid(-1.0))) / 2
    assert logistic(pos, neg).item() == pytest.approx(pos_part + neg_part, rel=1e-12)
    assert logistic_grad(pos, neg)[0].item() == pytest.approx(pos_part + neg_part, rel=1e-12)


def test_logistic_negative_term_averages_over_b_times_m():
    pos, neg = _t([2.0]), _t([[1.0, -1.0, 0.0, 3.0]])
    expected = -math.log(_sigmoid(2.0)) + sum(-math.log(_sigmoid(-n)) for n in [1.0, -1.0, 0.0, 3.0]) / 4
    assert logistic(pos, neg).item() == pytest.approx(expected, rel=1e-12)


def test_hinge_value_by_hand():
    pos, neg = _t([2.0, 0.5, 0.0]), _t([[0.5], [0.0], [1.0]])
    # slacks 1 - (pos - neg): -0.5 (met), 0.5, 2.0
    assert hinge(pos, neg).item() == pytest.approx(2.5 / 3, rel=1e-12)
    assert hinge_grad(pos, neg)[0].item() == pytest.approx(2.5 / 3, rel=1e-12)
    # margin 0.25: slacks -1.25, -0.25, 1.25
    assert hinge(pos, neg, margin=0.25).item() == pytest.approx(1.25 / 3, rel=1e-12)


def test_warp_value_by_hand():
    pos, neg = _t([0.0]), _t([[-2.0, 0.5, 3.0]])
    # neg > pos - margin = -1: columns 1 and 2 violate, the first (column 1) is chosen after 2 tries
    expected = math.log(math.floor(10 / 2)) * (1.0 - 0.0 + 0.5)
    assert warp(pos, neg, n_items=11).item() == pytest.approx(expected, rel=1e-12)
    assert warp_grad(pos, neg, n_items=11)[0].item() == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------- grad signs
def test_gradient_signs():
    pos, neg = _random_scores(6, 3, seed=0)
    for fn in (bpr_grad, logistic_grad):
        _, d_pos, d_neg = fn(pos, neg)
        assert torch.all(d_pos < 0)
        assert torch.all(d_neg > 0)
    _, d_pos, d_neg = hinge_grad(pos, neg)
    active = (1.0 - (pos[:, None] - neg)) > 0
    assert torch.all(d_neg[active] > 0) and torch.all(d_neg[~active] == 0)
    assert torch.all(d_pos[active.any(1)] < 0) and torch.all(d_pos[~active.any(1)] == 0)


def test_hinge_zero_when_margin_met():
    pos, neg = _t([3.0, 5.0]), _t([[1.0, 2.0], [0.0, 3.9]])
    loss, d_pos, d_neg = hinge_grad(pos, neg)
    assert loss.item() == 0.0
    assert torch.all(d_pos == 0) and torch.all(d_neg == 0)
    assert hinge(pos, neg).item() == 0.0


def test_hinge_gradient_values():
    pos, neg = _t([0.0, 3.0]), _t([[0.5, -2.0], [2.5, 0.0]])
    # active pairs: (0,0) slack 1.5, (0,1) slack -1 no, (1,0) slack 0.5, (1,1) no
    _, d_pos, d_neg = hinge_grad(pos, neg)
    torch.testing.assert_close(d_neg, _t([[0.25, 0.0], [0.25, 0.0]]))
    torch.testing.assert_close(d_pos, _t([-0.25, -0.25]))


# ----------------------------------------------- closed form == autograd
BUILTIN = {
    "bpr": (lambda p, n: bpr(p, n, sigma=1.7), lambda p, n: bpr_grad(p, n, sigma=1.7)),
    "logistic": (logistic, logistic_grad),
    "hinge": (lambda p, n: hinge(p, n, margin=0.8), lambda p, n: hinge_grad(p, n, margin=0.8)),
    "warp": (lambda p, n: warp(p, n, n_items=37, margin=0.6), lambda p, n: warp_grad(p, n, n_items=37, margin=0.6)),
}


@pytest.mark.parametrize("name", sorted(BUILTIN))
@pytest.mark.parametrize("m", [1, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_matches_autograd(name, m, seed):
    loss_fn, grad_fn = BUILTIN[name]
    pos, neg = _random_scores(9, m, seed)
    pos.requires_grad_(True)
    neg.requires_grad_(True)
    ref = loss_fn(pos, neg)
    ref_pos, ref_neg = torch.autograd.grad(ref, (pos, neg))
    loss, d_pos, d_neg = grad_fn(pos.detach(), neg.detach())
    assert d_pos.shape == (9,) and d_neg.shape == (9, m)
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(d_pos, ref_pos, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(d_neg, ref_neg, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", PAIRWISE_LOSSES)
def test_resolve_loss_builtin_pairs_agree(name):
    loss_fn, grad_fn = resolve_loss(name, sigma=2.5, margin=0.7, n_items=50)
    pos, neg = _random_scores(7, 3, seed=5)
    pos.requires_grad_(True)
    neg.requires_grad_(True)
    ref = loss_fn(pos, neg)
    ref_pos, ref_neg = torch.autograd.grad(ref, (pos, neg))
    loss, d_pos, d_neg = grad_fn(pos.detach(), neg.detach())
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(d_pos, ref_pos, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(d_neg, ref_neg, rtol=1e-12, atol=1e-14)


def test_resolve_loss_passes_parameters():
    pos, neg = _t([1.0, 0.0]), _t([[0.0], [1.0]])
    bpr_fn, _ = resolve_loss("bpr", sigma=2.0, margin=1.0, n_items=10)
    assert bpr_fn(pos, neg).item() == pytest.approx(bpr(pos, neg, sigma=2.0).item())
    hinge_fn, _ = resolve_loss("hinge", sigma=1.0, margin=3.0, n_items=10)
    assert hinge_fn(pos, neg).item() == pytest.approx(((3 - 1) + (3 + 1)) / 2)
    warp_fn, _ = resolve_loss("warp", sigma=1.0, margin=1.0, n_items=21)
    # both rows violate on their only column: weight log(20)
    expected = math.log(20) * ((1 - 1 + 0) + (1 - 0 + 1)) / 2
    assert warp_fn(pos, neg).item() == pytest.approx(expected)


# ------------------------------------------------------------------ WARP
def test_warp_picks_first_violating_column():
    pos = _t([0.0, 0.0, 0.0])
    neg = _t(
        [
            [-5.0, -0.5, 2.0, 0.1],  # -0.5 > -1: column 1
            [3.0, 4.0, -9.0, 0.0],  # column 0 although column 1 violates more
            [-3.0, -2.0, -1.5, 0.2],  # column 3
        ]
    )
    first, weight = warp_weights(pos, neg, n_items=13)
    assert first.tolist() == [1, 0, 3]
    torch.testing.assert_close(weight, _t([math.log(6), math.log(12), math.log(3)]))
    _, d_pos, d_neg = warp_grad(pos, neg, n_items=13)
    # gradient only on the chosen column, weight / B
    expected = torch.zeros_like(neg)
    expected[0, 1], expected[1, 0], expected[2, 3] = math.log(6) / 3, math.log(12) / 3, math.log(3) / 3
    torch.testing.assert_close(d_neg, expected)
    torch.testing.assert_close(d_pos, -expected.sum(1))


def test_warp_weight_for_each_number_of_tries():
    m, n_items = 6, 101
    pos = torch.zeros(m, dtype=torch.float64)
    neg = torch.full((m, m), -10.0, dtype=torch.float64)
    for t in range(1, m + 1):
        neg[t - 1, t - 1] = 0.5  # row t-1 first violates on draw t
    first, weight = warp_weights(pos, neg, n_items=n_items)
    assert first.tolist() == list(range(m))
    expected = [math.log(math.floor((n_items - 1) / t)) for t in range(1, m + 1)]
    assert weight.tolist() == pytest.approx(expected, rel=1e-12)
    assert expected[0] == pytest.approx(math.log(n_items - 1))


def test_warp_weight_is_finite_when_tries_exceed_catalogue():
    pos = _t([0.0])
    neg = _t([[-5.0, -5.0, -5.0, 1.0]])
    first, weight = warp_weights(pos, neg, n_items=3)
    assert first.item() == 3
    assert weight.item() == 0.0


def test_warp_no_violation_gives_zero_weight_and_gradient():
    pos = _t([2.0, 5.0])
    neg = _t([[0.5, 1.0, -3.0], [3.9, 0.0, 1.0]])  # all <= pos - 1
    first, weight = warp_weights(pos, neg, n_items=100)
    assert torch.all(weight == 0)
    loss, d_pos, d_neg = warp_grad(pos, neg, n_items=100)
    assert loss.item() == 0.0
    assert torch.all(d_pos == 0) and torch.all(d_neg == 0)
    assert warp(pos, neg, n_items=100).item() == 0.0


def test_warp_mixed_rows():
    pos = _t([2.0, 0.0])
    neg = _t([[0.5, 0.0], [-2.0, 0.5]])  # row 0: no violation; row 1: column 1
    loss, d_pos, d_neg = warp_grad(pos, neg, n_items=9)
    w = math.log(4)  # floor(8 / 2)
    assert loss.item() == pytest.approx(w * 1.5 / 2)
    torch.testing.assert_close(d_pos, _t([0.0, -w / 2]))
    torch.testing.assert_close(d_neg, _t([[0.0, 0.0], [0.0, w / 2]]))


# --------------------------------------------------------------- callables
def _custom(pos, neg):
    return torch.nn.functional.softplus(neg - pos[:, None]).pow(2).mean() + 0.1 * pos.pow(2).mean()


def test_custom_callable_uses_autograd():
    loss_fn, grad_fn = resolve_loss(_custom, sigma=1.0, margin=1.0, n_items=10)
    assert loss_fn is _custom
    pos, neg = _random_scores(5, 3, seed=3)
    p, n = pos.clone().requires_grad_(True), neg.clone().requires_grad_(True)
    ref = _custom(p, n)
    ref_pos, ref_neg = torch.autograd.grad(ref, (p, n))
    loss, d_pos, d_neg = grad_fn(pos, neg)
    assert not loss.requires_grad
    torch.testing.assert_close(loss, ref.detach())
    torch.testing.assert_close(d_pos, ref_pos)
    torch.testing.assert_close(d_neg, ref_neg)
    # the inputs are left untouched
    assert not pos.requires_grad and not neg.requires_grad


def test_custom_callable_works_under_no_grad():
    grad_fn = autograd_grad(_custom)
    pos, neg = _random_scores(4, 2, seed=8)
    with torch.no_grad():
        _, d_pos, d_neg = grad_fn(pos, neg)
    assert torch.any(d_pos != 0) and torch.any(d_neg != 0)


def test_custom_callable_unused_input_gives_zero_gradient():
    grad_fn = autograd_grad(lambda p, n: -p.mean())
    pos, neg = _random_scores(4, 2, seed=1)
    loss, d_pos, d_neg = grad_fn(pos, neg)
    torch.testing.assert_close(d_pos, torch.full_like(pos, -0.25))
    assert torch.all(d_neg == 0) and d_neg.shape == neg.shape
    assert loss.item() == pytest.approx(-pos.mean().item())


@pytest.mark.parametrize(
    "bad",
    [lambda p, n: p - n.mean(1), lambda p, n: float((p - n.mean(1)).sum().detach()), lambda p, n: p[:, None] - n],
)
def test_non_scalar_callable_raises_type_error(bad):
    _, grad_fn = resolve_loss(bad, sigma=1.0, margin=1.0, n_items=10)
    pos, neg = _random_scores(4, 2, seed=1)
    with pytest.raises(TypeError, match="scalar"):
        grad_fn(pos, neg)


def test_unknown_loss_name_raises():
    with pytest.raises(ValueError, match="'nope'"):
        resolve_loss("nope", sigma=1.0, margin=1.0, n_items=10)


def test_resolve_loss_refuses_ials_with_where_it_is_solved():
    # the all-pairs squared loss has no per-batch gradient of sampled scores
    with pytest.raises(ValueError, match="alternating"):
        resolve_loss("ials", sigma=1.0, margin=1.0, n_items=5)
