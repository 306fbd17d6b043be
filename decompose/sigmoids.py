"""The two leaky hard sigmoids that squash CI pre-activations: lower-leaky for masks, upper-leaky for minimality."""

from __future__ import annotations

import torch
from torch import Tensor


class _LowerLeakyHardSigmoid(torch.autograd.Function):
    """clamp(x, 0, 1) forward; straight-through leak below 0 that may only raise x."""

    @staticmethod
    def forward(ctx, x: Tensor, alpha: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return x.clamp(0.0, 1.0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        # grad < 0 means gradient descent would raise x: only then may a dead CI leak back to life.
        scale = torch.where(x <= 0, (grad < 0) * ctx.alpha, (x <= 1).to(grad.dtype))
        return grad * scale, None


def lower_leaky_hard_sigmoid(x: Tensor, alpha: float = 0.01) -> Tensor:
    """clamp(x, 0, 1), so masks are never negative; backward: grad on (0, 1], 0 above 1, α·grad below 0 iff grad < 0."""
    return _LowerLeakyHardSigmoid.apply(x, alpha)


def upper_leaky_hard_sigmoid(x: Tensor, alpha: float = 0.01) -> Tensor:
    """0 below 0, x on [0, 1], 1 + α(x − 1) above 1; plain autograd (slopes 0, 1, α)."""
    # The α slope above 1 lets importance minimality keep pushing over-large CIs down.
    return torch.where(x > 1, 1 + alpha * (x - 1), x.clamp(min=0))
