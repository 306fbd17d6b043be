"""Faithfulness loss: the mean squared delta entry over matrices of different shapes."""

import pytest
import torch
from pydantic import ValidationError

from decompose.losses.faithfulness import FaithfulnessConfig, faithfulness_loss


def test_two_deltas_of_different_shapes():
    d1 = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 1.0]])  # ‖·‖² = 1 + 4 + 1 = 6, numel 6
    d2 = torch.tensor([[3.0], [0.0]])  # ‖·‖² = 9, numel 2
    # (6 + 9) / (6 + 2) = 15/8 = 1.875
    assert faithfulness_loss([d1, d2]).item() == pytest.approx(1.875)


def test_gradient_is_2_delta_over_numel():
    d = torch.tensor([[1.0, -2.0]], requires_grad=True)
    faithfulness_loss([d]).backward()
    # ∂/∂d (Σd²/2) = d → [1, −2]
    assert torch.allclose(d.grad, torch.tensor([[1.0, -2.0]]))


def test_config_defaults_and_strictness():
    cfg = FaithfulnessConfig()
    assert (cfg.kind, cfg.coeff, cfg.warmup_steps, cfg.warmup_lr) == ("faithfulness", 1e6, 200, 1e-3)
    with pytest.raises(ValidationError):
        FaithfulnessConfig(unknown=1)
    with pytest.raises(ValueError):
        faithfulness_loss([])
