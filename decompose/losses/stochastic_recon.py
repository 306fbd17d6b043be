"""Stochastic reconstruction: KL to the target with masks m = g + (1 − g)·r and a random Δ-mask."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from decompose.component_model import ModuleMask
from decompose.config_base import BaseConfig
from decompose.losses.recon import ReconContext, StatelessRecon, routing
from decompose.masks import delta_masks, stochastic_masks


class StochasticReconConfig(BaseConfig):
    """SPD's stochastic reconstruction; with `subset` (VPD default) each token routes a uniform-k subset of matrices."""

    kind: Literal["stochastic_recon"] = "stochastic_recon"
    coeff: float = Field(1.0, description="Loss coefficient.")
    subset: bool = Field(True, description="Uniform-k subset routing (the rest of the matrices keep their weights).")

    def build(self) -> StochasticRecon:
        return StochasticRecon(self)


class StochasticRecon(StatelessRecon):
    def __init__(self, cfg: StochasticReconConfig):
        self.cfg = cfg

    def masks(self, ctx: ReconContext) -> dict[str, ModuleMask]:
        routed = routing(ctx, self.cfg.subset)
        return {
            n: ModuleMask(
                stochastic_masks(g, ctx.generator),
                delta_masks(ctx.lead, ctx.generator, device=g.device, dtype=g.dtype),
                routed[n],
            )
            for n, g in ctx.ci.items()
        }
