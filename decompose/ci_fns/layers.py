"""Small pieces shared by the CI functions."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def init_linear(layer: nn.Linear, gain: float) -> nn.Linear:
    """N(0, gain/√fan_in) weights and zero bias (ReLU-gain init for hidden layers, linear for outputs)."""
    nn.init.normal_(layer.weight, std=gain / math.sqrt(layer.in_features))
    nn.init.zeros_(layer.bias)
    return layer


def rms_normalise(x: Tensor, eps: float = 1e-6) -> Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
