"""Rank-1 components of one weight matrix: W ≈ (V·U)ᵀ = Σ_c u_c v_cᵀ, with V (d_in×C) and U (C×d_out)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Components(nn.Module):
    """The C subcomponents of one matrix. Column c of V reads, row c of U writes."""

    def __init__(self, d_in: int, d_out: int, C: int):
        super().__init__()
        # N(0, 1/d_in) and N(0, 1/C): unit-scale component activations and outputs at init.
        self.V = nn.Parameter(torch.randn(d_in, C) / math.sqrt(d_in))
        self.U = nn.Parameter(torch.randn(C, d_out) / math.sqrt(C))

    @property
    def C(self) -> int:
        return self.V.shape[1]

    def weight(self) -> Tensor:
        """(d_out, d_in), nn.Linear layout."""
        return (self.V @ self.U).T

    def rank_one(self, c: int) -> Tensor:
        """u_c v_cᵀ in nn.Linear layout (d_out, d_in)."""
        return torch.outer(self.U[c], self.V[:, c])
