"""Persistent PGD (VPD's training adversary): mask sources that live across steps, ascended with Adam.

Per step: `n_warmup_steps` inner ascent steps on the current batch, then the loss pass with the
current sources. The sources are leaf tensors of the total loss, so the one main backward also gives
∂L/∂s (s appears only in this term; Adam is invariant to the coefficient's scale) — no second
backward with retained graph as in the reference. The ascent step follows the main optimiser step.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from decompose.adversary import AdamAscent, init_sources
from decompose.component_model import ModuleMask
from decompose.config_base import BaseConfig
from decompose.losses.recon import ReconContext, adversarial_specs, masked_kl, routing

Scope = Literal["per_batch_per_position", "broadcast_across_batch", "single_source"]


class PersistentPgdReconConfig(BaseConfig):
    kind: Literal["persistent_pgd_recon"] = "persistent_pgd_recon"
    coeff: float = Field(0.5, description="Loss coefficient.")
    scope: Scope = Field("per_batch_per_position", description="Source shape: (B,T), (1,T) or (1,1) per matrix.")
    lr: float = Field(0.01, gt=0, description="Adam ascent learning rate (constant after warmup).")
    lr_warmup_frac: float = Field(0.025, ge=0, le=1, description="Linear warmup of the ascent lr, as a fraction of the run.")
    beta1: float = Field(0.5, description="Adam β1.")
    beta2: float = Field(0.99, description="Adam β2.")
    n_warmup_steps: int = Field(2, ge=0, description="Inner ascent steps on each batch before the loss pass.")
    subset: bool = Field(False, description="Uniform-k subset routing (reference: all matrices).")

    def build(self) -> PersistentPgdRecon:
        return PersistentPgdRecon(self)


class PersistentPgdRecon:
    def __init__(self, cfg: PersistentPgdReconConfig):
        self.cfg = cfg
        self.ascent = AdamAscent(cfg.lr, cfg.beta1, cfg.beta2)
        self.sources: dict[str, torch.Tensor] = {}

    def _lr(self, ctx: ReconContext) -> float:
        warm = self.cfg.lr_warmup_frac * ctx.total_steps
        return self.cfg.lr * min(1.0, (ctx.step + 1) / warm) if warm >= 1 else self.cfg.lr

    def _ensure_sources(self, ctx: ReconContext) -> None:
        if self.sources:
            return
        full = ctx.lead
        ones = tuple(1 for _ in full)
        lead = {"per_batch_per_position": full, "broadcast_across_batch": (1, *full[1:]), "single_source": ones}[self.cfg.scope]
        shapes = {n: (*lead, ctx.cm.C(n) + 1) for n in ctx.cm.names}
        self.sources = {n: s.to(ctx.batch.device) for n, s in init_sources(shapes, "random", ctx.generator).items()}

    def masks(self, ctx: ReconContext) -> dict[str, ModuleMask]:
        self._ensure_sources(ctx)
        routed = routing(ctx, self.cfg.subset)
        ci = {n: g.detach() for n, g in ctx.ci.items()}
        for _ in range(self.cfg.n_warmup_steps):
            for s in self.sources.values():
                s.requires_grad_(True)
            with ctx.cm.frozen_components():  # only the sources' gradient is wanted
                loss = masked_kl(ctx, adversarial_specs(ci, self.sources, routed))
            grads = torch.autograd.grad(loss, list(self.sources.values()))
            self._step(ctx, dict(zip(self.sources, grads)))
        for s in self.sources.values():
            s.requires_grad_(True)
            s.grad = None
        return adversarial_specs(ctx.ci, self.sources, routed)

    def _step(self, ctx: ReconContext, grads: dict[str, torch.Tensor]) -> None:
        self.sources = {n: s.detach() for n, s in self.sources.items()}
        self.ascent.step(self.sources, grads, lr=self._lr(ctx))

    def after_backward(self, ctx: ReconContext) -> None:
        grads = {n: s.grad if s.grad is not None else torch.zeros_like(s) for n, s in self.sources.items()}
        self._step(ctx, grads)

    def state_dict(self) -> dict:
        return {"sources": {n: s.detach().clone() for n, s in self.sources.items()}, "ascent": self.ascent.state_dict()}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        self.sources = {n: s.to(device).clone() for n, s in state["sources"].items()}
        self.ascent.load_state_dict(state["ascent"])
        for moments in (self.ascent.exp_avg, self.ascent.exp_avg_sq):
            for n in moments:
                moments[n] = moments[n].to(device)
