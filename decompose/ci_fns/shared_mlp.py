"""One MLP per matrix, d_in → hidden → C, reading the matrix's whole input vector (default for small models)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, PositiveInt
from torch import Tensor, nn

from decompose.ci_fns.layers import init_linear
from decompose.config_base import BaseConfig


class SharedMlpConfig(BaseConfig):
    kind: Literal["shared_mlp"] = "shared_mlp"
    hidden: PositiveInt = Field(256, description="Hidden width of each matrix's CI MLP.")

    def build(self, shapes: dict[str, tuple[int, int]]) -> SharedMlpCI:
        """`shapes`: matrix name → (d_in, C)."""
        return SharedMlpCI(shapes, self.hidden)


class SharedMlpCI(nn.Module):
    def __init__(self, shapes: dict[str, tuple[int, int]], hidden: int):
        super().__init__()
        self.names = list(shapes)
        self.mlps = nn.ModuleDict(
            {
                n.replace(".", "-"): nn.Sequential(
                    init_linear(nn.Linear(d_in, hidden), math.sqrt(2.0)), nn.GELU(), init_linear(nn.Linear(hidden, C), 1.0)
                )
                for n, (d_in, C) in shapes.items()
            }
        )

    def forward(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        return {n: self.mlps[n.replace(".", "-")](inputs[n]) for n in self.names}
