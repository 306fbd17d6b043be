"""Fresh PGD reconstruction: sign-gradient ascent on mask sources from a random start, then KL at the result.

Sources are discarded after each use. With `shared: true` one source per matrix is shared by every
token of the batch (the reference's eval setting: a per-token adversary exploits interference noise).
Under data parallelism a shared source covers the global batch: it starts from rank 0's draw and each
ascent step uses the gradient averaged over the ranks, so it stays the same on every rank.
The same function is the headline evaluation metric (20 steps of 0.1, shared, all matrices).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, PositiveInt

from decompose.adversary import SignAscent, init_sources
from decompose.component_model import ModuleMask
from decompose.config_base import BaseConfig
from decompose.distributed import all_reduce_mean_, broadcast_
from decompose.losses.recon import ReconContext, StatelessRecon, adversarial_specs, masked_kl, routing


class PgdReconConfig(BaseConfig):
    kind: Literal["pgd_recon"] = "pgd_recon"
    coeff: float = Field(0.5, description="Loss coefficient.")
    n_steps: PositiveInt = Field(1, description="Ascent steps before the loss pass.")
    step_size: float = Field(1.0, gt=0, description="Sign-ascent step size (keep n_steps·step_size ≈ 1–2).")
    shared: bool = Field(True, description="One source per matrix for the whole batch, else one per token.")
    subset: bool = Field(True, description="Uniform-k subset routing.")
    init: Literal["random", "ones", "zeros"] = Field("random", description="Source initialisation.")

    def build(self) -> PgdRecon:
        return PgdRecon(self)


def pgd_sources(ctx: ReconContext, cfg: PgdReconConfig, routed: dict) -> dict[str, torch.Tensor]:
    """Run cfg.n_steps of sign ascent on fresh sources against detached CIs; return the final sources."""
    lead = tuple(1 for _ in ctx.lead) if cfg.shared else ctx.lead
    sources = init_sources({n: (*lead, ctx.cm.C(n) + 1) for n in ctx.cm.names}, cfg.init, ctx.generator)
    sources = {n: s.to(ctx.batch.device) for n, s in sources.items()}
    if cfg.shared:
        broadcast_(list(sources.values()))  # data parallel: one start for the global batch
    ci = {n: g.detach() for n, g in ctx.ci.items()}
    ascent = SignAscent(cfg.step_size)
    for _ in range(cfg.n_steps):
        for s in sources.values():
            s.requires_grad_(True)
        with torch.enable_grad(), ctx.cm.frozen_components():
            loss = masked_kl(ctx, adversarial_specs(ci, sources, routed))
            grads = torch.autograd.grad(loss, list(sources.values()))
        if cfg.shared:
            all_reduce_mean_(list(grads))  # data parallel: the global batch's gradient, the same step on every rank
        sources = {n: s.detach() for n, s in sources.items()}
        ascent.step(sources, dict(zip(sources, grads)))
    return sources


class PgdRecon(StatelessRecon):
    def __init__(self, cfg: PgdReconConfig):
        self.cfg = cfg

    def masks(self, ctx: ReconContext) -> dict[str, ModuleMask]:
        routed = routing(ctx, self.cfg.subset)
        return adversarial_specs(ctx.ci, pgd_sources(ctx, self.cfg, routed), routed)
