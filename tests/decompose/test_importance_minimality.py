"""Importance minimality (with the frequency term) and the p schedule, against hand arithmetic."""

import math

import pytest
import torch
from pydantic import ValidationError

from decompose.losses.importance_minimality import (
    ImportanceMinimalityConfig,
    annealed_p,
    importance_minimality_loss,
)
from decompose.sigmoids import upper_leaky_hard_sigmoid

# Module A: 2 tokens × C=3.  Module B: (1, 2) tokens × C=2.
A = torch.tensor([[0.0, 0.5, 1.0], [0.5, 0.5, 0.0]])
B = torch.tensor([[[1.0, 0.0], [0.25, 0.0]]])


def test_p1_beta0():
    # A: S = [0.5, 1, 1], μ = S/2 → Σ = 1.25.  B: S = [1.25, 0], μ → Σ = 0.625.  Total 1.875.
    loss = importance_minimality_loss([A, B], p=1.0, beta=0.0, eps=0.0)
    assert loss.item() == pytest.approx(1.875)


def test_p2_beta0():
    # A²: [[0, .25, 1], [.25, .25, 0]] → S = [.25, .5, 1], Σμ = 1.75/2 = 0.875.
    # B²: [[1, 0], [.0625, 0]] → S = [1.0625, 0], Σμ = 0.53125.  Total 1.40625.
    loss = importance_minimality_loss([A, B], p=2.0, beta=0.0, eps=0.0)
    assert loss.item() == pytest.approx(1.40625)


def test_p1_beta_half():
    # Frequency term β·Σ μ·log2(1 + S):
    #   A: 0.25·log2(1.5) + 0.5·log2(2) + 0.5·log2(2) = 0.25·log2(1.5) + 1
    #   B: 0.625·log2(2.25) + 0·log2(1)
    freq = 0.25 * math.log2(1.5) + 1.0 + 0.625 * math.log2(2.25)
    loss = importance_minimality_loss([A, B], p=1.0, beta=0.5, eps=0.0)
    assert loss.item() == pytest.approx(1.875 + 0.5 * freq)


def test_world_size_scales_the_log_sum():
    # A only, β=1, world_size=3: log2(1 + 3·[0.5, 1, 1]) = [log2 2.5, 2, 2];
    # freq = 0.25·log2(2.5) + 0.5·2 + 0.5·2.  Total 1.25 + freq.
    loss = importance_minimality_loss([A], p=1.0, beta=1.0, eps=0.0, world_size=3)
    assert loss.item() == pytest.approx(1.25 + 0.25 * math.log2(2.5) + 2.0)


def test_default_eps_is_negligible():
    loss = importance_minimality_loss([A, B], p=1.0, beta=0.0)
    assert loss.item() == pytest.approx(1.875)


def test_no_nan_grads_at_zero_with_small_p():
    z = torch.tensor([[-1.0, 0.0, 0.2], [0.0, 0.5, -3.0]], requires_grad=True)
    ci = torch.tensor([[0.0, 0.0, 0.3]], requires_grad=True)
    loss = importance_minimality_loss([upper_leaky_hard_sigmoid(z), ci], p=0.3, beta=0.5)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(z.grad).all() and torch.isfinite(ci.grad).all()
    # ĝ = 0 exactly still gets a (large, finite) positive gradient through (ĝ+ε)^(p−1).
    assert (ci.grad[0, :2] > 0).all()


def test_annealed_p_default_schedule():
    cfg = ImportanceMinimalityConfig()  # 2.0 → 0.4 linearly over the whole run
    assert annealed_p(0, 100, cfg) == pytest.approx(2.0)
    assert annealed_p(50, 100, cfg) == pytest.approx(1.2)  # 2 + 0.5·(0.4 − 2)
    assert annealed_p(100, 100, cfg) == pytest.approx(0.4)
    assert annealed_p(150, 100, cfg) == pytest.approx(0.4)


def test_annealed_p_window():
    cfg = ImportanceMinimalityConfig(p_anneal_start_frac=0.2, p_anneal_end_frac=0.6)
    assert annealed_p(10, 100, cfg) == pytest.approx(2.0)  # before the window
    assert annealed_p(20, 100, cfg) == pytest.approx(2.0)  # window start, t = 0
    assert annealed_p(40, 100, cfg) == pytest.approx(1.2)  # t = (0.4−0.2)/0.4 = 0.5
    assert annealed_p(60, 100, cfg) == pytest.approx(0.4)
    assert annealed_p(90, 100, cfg) == pytest.approx(0.4)


def test_config_validation():
    cfg = ImportanceMinimalityConfig()
    assert (cfg.kind, cfg.coeff, cfg.p_start, cfg.p_final, cfg.beta, cfg.eps) == (
        "importance_minimality",
        1e-3,
        2.0,
        0.4,
        0.0,
        1e-12,
    )
    with pytest.raises(ValidationError):
        ImportanceMinimalityConfig(p_anneal_start_frac=0.7, p_anneal_end_frac=0.5)
    with pytest.raises(ValidationError):
        ImportanceMinimalityConfig(extra_field=1)
