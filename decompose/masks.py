"""Component masks (stochastic and adversarial), Δ-masks and uniform-k subset routing."""

from __future__ import annotations

import torch
from torch import Tensor


def stochastic_masks(ci_lower: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """m = g + (1 − g)·r, r ~ U(0,1) per element: m ∈ [g, 1] and ∂m/∂g = 1 − r, so recon losses train the CI fn."""
    r = torch.rand(ci_lower.shape, generator=generator, device=ci_lower.device, dtype=ci_lower.dtype)
    return torch.lerp(ci_lower, ci_lower.new_ones(()).expand_as(ci_lower), r)  # one fused pass


def delta_masks(
    shape: tuple[int, ...],
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """m_Δ ~ U(0,1) per token: Δ is never causally important, so its mask ignores the CIs."""
    return torch.rand(shape, generator=generator, device=device, dtype=dtype)


def uniform_k_routing(
    n_tokens: int,
    n_modules: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Bool (n_modules, n_tokens): per token k ~ U{1..M}, then exactly k modules chosen uniformly at random."""
    k = torch.randint(1, n_modules + 1, (n_tokens,), generator=generator, device=device)
    # argsort of uniform noise is a random permutation; its inverse gives each module's rank for that token.
    ranks = torch.rand(n_modules, n_tokens, generator=generator, device=device).argsort(0).argsort(0)
    return ranks < k


def adversarial_masks(ci_lower: Tensor, source: Tensor) -> tuple[Tensor, Tensor]:
    """(m, m_Δ) = (g + (1 − g)·s[..., :C], s[..., C]) with the source broadcast over g's leading dims.

    Interpolation rather than max(g, s) keeps gradient flowing to both g and s.
    """
    C = ci_lower.shape[-1]
    if source.shape[-1] != C + 1:
        raise ValueError(f"source last dim {source.shape[-1]} != C + 1 = {C + 1}")
    lead = ci_lower.shape[:-1]
    if torch.broadcast_shapes(lead, source.shape[:-1]) != lead:
        raise ValueError(f"source {tuple(source.shape)} does not broadcast to the CI's leading dims {tuple(lead)}")
    mask = torch.lerp(ci_lower, ci_lower.new_ones(()).expand_as(ci_lower), source[..., :C].to(ci_lower.dtype))
    return mask, source[..., C].expand(lead)
