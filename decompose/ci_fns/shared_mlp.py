"""One MLP per matrix, d_in → hidden → C, reading the matrix's whole input vector (default for small models)."""

from __future__ import annotations

import math
from typing import Literal, cast

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import Tensor, nn

from decompose.ci_fns.layers import init_linear
from decompose.config_base import BaseConfig
from decompose.targets import module_key


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
                module_key(n): nn.Sequential(init_linear(nn.Linear(d_in, hidden), math.sqrt(2.0)), nn.GELU(), init_linear(nn.Linear(hidden, C), 1.0))
                for n, (d_in, C) in shapes.items()
            }
        )

        # Matrices that read the same input tensor (q/k/v, gate/up) run their first layers as one matmul
        # and one GELU; the parameters stay per matrix. Off: one MLP call per matrix (the reference).
        self.grouped = False

    def forward(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        if not self.grouped:
            return {n: self.mlps[module_key(n)](inputs[n]) for n in self.names}
        groups: dict[tuple, list[str]] = {}
        for n in self.names:
            x = inputs[n]
            groups.setdefault((x.data_ptr(), x.shape, x.stride(), x.dtype, x.device), []).append(n)
        out: dict[str, Tensor] = {}
        for names in groups.values():
            mlps = [cast(nn.Sequential, self.mlps[module_key(n)]) for n in names]
            if len(names) == 1:
                out[names[0]] = mlps[0](inputs[names[0]])
                continue
            first = [cast(nn.Linear, m[0]) for m in mlps]
            h = F.gelu(F.linear(inputs[names[0]], torch.cat([f.weight for f in first]), torch.cat([f.bias for f in first])))
            for n, m, part in zip(names, mlps, h.split([f.out_features for f in first], dim=-1)):
                out[n] = m[2](part)
        return {n: out[n] for n in self.names}
