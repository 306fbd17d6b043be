"""VPD's global CI function: one transformer over all matrices' RMS-normalised inputs, for real models.

Inputs of every matrix are RMS-normalised separately (no gain) and concatenated in sorted name
order, projected to d_model, passed through pre-norm blocks (attention with RoPE, GELU MLP) and read
out as ΣC pre-sigmoid CIs split per matrix. The reference's attention is bidirectional, so a token's
CI depends on later tokens; `causal: true` makes CIs stable while text is generated.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, PositiveInt
from torch import Tensor, nn

from decompose.ci_fns.layers import init_linear, rms_normalise
from decompose.config_base import BaseConfig


class GlobalTransformerConfig(BaseConfig):
    kind: Literal["global_transformer"] = "global_transformer"
    d_model: PositiveInt = Field(512, description="Residual width of the CI transformer (paper: 2048).")
    n_blocks: PositiveInt = Field(2, description="Transformer blocks (paper: 8; ½–2× the target depth).")
    n_heads: PositiveInt = Field(8, description="Attention heads.")
    d_mlp: PositiveInt = Field(2048, description="MLP hidden width (paper: 4× d_model).")
    rope_base: float = Field(1e4, description="RoPE base.")
    causal: bool = Field(False, description="Causal attention (reference: bidirectional).")

    def build(self, shapes: dict[str, tuple[int, int]]) -> GlobalTransformerCI:
        return GlobalTransformerCI(shapes, self)


def _rope(x: Tensor, base: float) -> Tensor:
    """Rotary embedding over the last dim of (B, H, T, Dh)."""
    T, Dh = x.shape[-2], x.shape[-1]
    half = Dh // 2
    freqs = base ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = torch.arange(T, device=x.device, dtype=torch.float32)[:, None] * freqs
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half : 2 * half]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos, x[..., 2 * half :]], dim=-1)


class _Block(nn.Module):
    def __init__(self, cfg: GlobalTransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.norm1 = nn.RMSNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.norm2 = nn.RMSNorm(cfg.d_model)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_mlp), nn.GELU(), nn.Linear(cfg.d_mlp, cfg.d_model))

    def forward(self, x: Tensor) -> Tensor:
        B, T, D = x.shape
        H = self.cfg.n_heads
        q, k, v = self.qkv(self.norm1(x)).view(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
        q, k = _rope(q, self.cfg.rope_base), _rope(k, self.cfg.rope_base)
        att = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=self.cfg.causal)
        x = x + self.proj(att.transpose(1, 2).reshape(B, T, D))
        return x + self.mlp(self.norm2(x))


class GlobalTransformerCI(nn.Module):
    def __init__(self, shapes: dict[str, tuple[int, int]], cfg: GlobalTransformerConfig):
        super().__init__()
        if cfg.d_model % cfg.n_heads:
            raise ValueError("global_transformer: d_model must be divisible by n_heads")
        self.names = sorted(shapes)
        self.sizes = [shapes[n][1] for n in self.names]
        d_in = sum(shapes[n][0] for n in self.names)
        self.embed = init_linear(nn.Linear(d_in, cfg.d_model), math.sqrt(2.0))
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_blocks))
        self.head = init_linear(nn.Linear(cfg.d_model, sum(self.sizes)), 1.0)

    def forward(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        x = self.embed(torch.cat([rms_normalise(inputs[n]) for n in self.names], dim=-1))
        for block in self.blocks:
            x = block(x)
        return dict(zip(self.names, self.head(x).split(self.sizes, dim=-1)))
