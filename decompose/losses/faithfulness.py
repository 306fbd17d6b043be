"""Faithfulness: the mean squared entry of the weight deltas Δ_l = W_l − (V_l·U_l)ᵀ over all decomposed matrices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, cast

from pydantic import Field
from torch import Tensor

from decompose.config_base import BaseConfig


class FaithfulnessConfig(BaseConfig):
    """Weight of the Δ penalty and the U,V-only warmup that precedes main training."""

    kind: Literal["faithfulness"] = Field("faithfulness", description="Discriminator of the loss config.")
    coeff: float = Field(1e6, ge=0, description="Multiplier of the faithfulness loss in the total loss.")
    warmup_steps: int = Field(200, ge=0, description="Steps of faithfulness-only training of U and V before main training.")
    warmup_lr: float = Field(1e-3, gt=0, description="Learning rate of the faithfulness warmup optimiser.")


def faithfulness_loss(deltas: Sequence[Tensor]) -> Tensor:
    """Σ_l ‖Δ_l‖²_F / Σ_l numel(Δ_l): every decomposed parameter weighs the same, whatever its matrix."""
    if len(deltas) == 0:
        raise ValueError("faithfulness_loss needs at least one weight delta")
    # float32 sums: the deltas are tiny and bf16 would round their squares away.
    total = cast(Tensor, sum(d.float().pow(2).sum() for d in deltas))
    return total / sum(d.numel() for d in deltas)
