"""Importance minimality with VPD's frequency term: a p-norm penalty on upper-leaky CIs, p annealed over training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field, PositiveFloat, model_validator
from torch import Tensor

from decompose.config_base import BaseConfig


class ImportanceMinimalityConfig(BaseConfig):
    """Coefficient, p schedule and frequency weight of the importance-minimality loss."""

    kind: Literal["importance_minimality"] = Field("importance_minimality", description="Discriminator of the loss config.")
    coeff: float = Field(1e-3, ge=0, description="Multiplier of the loss in the total loss.")
    p_start: PositiveFloat = Field(2.0, description="Exponent p before the anneal starts.")
    p_final: PositiveFloat = Field(0.4, description="Exponent p once the anneal has ended.")
    p_anneal_start_frac: float = Field(0.0, ge=0, le=1, description="Fraction of training at which p starts moving linearly to p_final.")
    p_anneal_end_frac: float = Field(1.0, ge=0, le=1, description="Fraction of training at which p reaches p_final (constant after).")
    beta: float = Field(0.0, ge=0, description="Weight of the frequency term μ·log2(1 + S); 0 gives plain importance minimality.")
    eps: float = Field(1e-12, gt=0, description="Added to the CIs before the power so that p < 1 has finite gradients.")

    @model_validator(mode="after")
    def _ordered_fracs(self) -> ImportanceMinimalityConfig:
        if self.p_anneal_start_frac > self.p_anneal_end_frac:
            raise ValueError("p_anneal_start_frac must not exceed p_anneal_end_frac")
        return self


def annealed_p(step: int, total_steps: int, cfg: ImportanceMinimalityConfig) -> float:
    """p_start before start_frac, linear to p_final at end_frac, p_final after (fractions of total_steps)."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    frac = step / total_steps
    if frac < cfg.p_anneal_start_frac:
        return cfg.p_start
    if frac >= cfg.p_anneal_end_frac:
        return cfg.p_final
    t = (frac - cfg.p_anneal_start_frac) / (cfg.p_anneal_end_frac - cfg.p_anneal_start_frac)
    return cfg.p_start + t * (cfg.p_final - cfg.p_start)


def importance_minimality_loss(ci_upper: Sequence[Tensor], p: float, beta: float, eps: float = 1e-12, world_size: int = 1) -> Tensor:
    """Σ_modules Σ_c [μ_c + β·μ_c·log2(1 + S_c·world_size)], S_c = Σ_tokens (ĝ+ε)^p, μ_c = S_c / N_tokens.

    Each tensor is (..., C) over the local tokens. world_size scales S to approximate the global-batch sum
    under data parallelism. Nothing is detached: gradient also flows through the log term.
    """
    if len(ci_upper) == 0:
        raise ValueError("importance_minimality_loss needs at least one module's CIs")
    sums, counts = [], []
    for ci in ci_upper:
        n_tokens = ci.numel() // ci.shape[-1]
        if n_tokens == 0:
            raise ValueError("importance_minimality_loss got a module with no tokens")
        # float32: sums over many tokens in bf16 lose the small CIs; ε keeps (ĝ+ε)^(p−1) finite at ĝ = 0.
        sums.append((ci.float() + eps).pow(p).reshape(-1, ci.shape[-1]).sum(0))
        counts.append(n_tokens)
    return importance_minimality_from_sums(sums, counts, beta, world_size)


def importance_minimality_from_sums(sums: Sequence[Tensor], n_tokens: Sequence[int], beta: float, world_size: int = 1) -> Tensor:
    """The loss from each module's S_c = Σ_tokens (ĝ+ε)^p, shape (C,), over its n_tokens local tokens."""
    total = torch.zeros((), device=sums[0].device)
    for s, n in zip(sums, n_tokens):
        if n == 0:
            raise ValueError("importance_minimality_loss got a module with no tokens")
        mu = s / n
        total = total + mu.sum()
        if beta != 0:
            total = total + beta * (mu * torch.log2(1 + s * world_size)).sum()
    return total
