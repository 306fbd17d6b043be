"""What every reconstruction loss shares: the step context, mask specs, and one batched masked forward.

A reconstruction loss only decides the masks of its pass. The training step concatenates the passes
of all reconstruction losses along the batch and runs them in one forward, so k losses cost one
larger forward instead of k separate ones, and the target distribution is computed once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from decompose.component_model import ComponentModel, ModuleMask
from decompose.losses.kl import OutputTarget
from decompose.masks import adversarial_masks, uniform_k_routing


@dataclass
class ReconContext:
    cm: ComponentModel
    batch: Tensor  # token ids (B, T), or features (B, d) for toy models
    ci: dict[str, Tensor]  # lower-leaky CI g, (*lead, C) per matrix
    target: OutputTarget
    generator: torch.Generator
    step: int
    total_steps: int

    @property
    def lead(self) -> tuple[int, ...]:
        return self.cm.lead(self.batch)


class StatelessRecon:
    """A reconstruction loss with nothing to update after the backward and nothing to checkpoint."""

    def after_backward(self, ctx: ReconContext) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        pass


def routing(ctx: ReconContext, subset: bool) -> dict[str, Tensor | None]:
    """Uniform-k subset routing per token, or every module everywhere."""
    names = ctx.cm.names
    if not subset:
        return dict.fromkeys(names)
    lead = ctx.lead
    routed = uniform_k_routing(math.prod(lead), len(names), ctx.generator, device=ctx.batch.device)
    return {n: routed[i].view(lead) for i, n in enumerate(names)}


def adversarial_specs(ci: dict[str, Tensor], sources: dict[str, Tensor], routed: dict[str, Tensor | None]) -> dict[str, ModuleMask]:
    specs = {}
    for n, g in ci.items():
        m, m_delta = adversarial_masks(g, sources[n])
        specs[n] = ModuleMask(m, m_delta, routed[n])
    return specs


def masked_kl(ctx: ReconContext, specs: dict[str, ModuleMask]) -> Tensor:
    return ctx.target.mean(ctx.cm.run(ctx.batch, specs))


def _full(spec: ModuleMask, lead: torch.Size, C: int) -> tuple[Tensor, Tensor, Tensor]:
    mask = spec.mask.expand(*lead, C)
    # No Δ path equals a Δ-mask of 0, and no routing equals routing everywhere: passes then concatenate.
    delta = torch.zeros(lead, dtype=mask.dtype, device=mask.device) if spec.delta is None else spec.delta.expand(lead)
    routed = torch.ones(lead, dtype=torch.bool, device=mask.device) if spec.routed is None else spec.routed.expand(lead)
    return mask, delta, routed


def batched_kls(ctx: ReconContext, passes: list[dict[str, ModuleMask]]) -> list[Tensor]:
    """Mean output loss (KL, or MSE for toy models) of each pass, from one forward over the passes concatenated along the batch."""
    if len(passes) == 1:
        return [masked_kl(ctx, passes[0])]
    lead = torch.Size(ctx.lead)
    specs = {}
    for n in ctx.cm.names:
        parts = [_full(p[n], lead, ctx.cm.C(n)) for p in passes]
        any_routing = any(p[n].routed is not None for p in passes)
        specs[n] = ModuleMask(
            torch.cat([m for m, _, _ in parts]),
            torch.cat([d for _, d, _ in parts]),
            torch.cat([r for _, _, r in parts]) if any_routing else None,
        )
    batch = ctx.batch.repeat(len(passes), *[1] * (ctx.batch.dim() - 1))
    kl = ctx.target.per_token(ctx.cm.run(batch, specs)).view(len(passes), -1)
    return list(kl.mean(1))
