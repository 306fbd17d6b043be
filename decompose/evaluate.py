"""Decomposition quality on fixed eval batches: CE/KL under each mask mode, L0, alive counts, PGD attack."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from decompose.component_model import ModuleMask
from decompose.config import EvalSettings
from decompose.losses.pgd_recon import PgdReconConfig, pgd_sources
from decompose.losses.recon import ReconContext, adversarial_specs, masked_kl, routing
from decompose.masks import delta_masks, stochastic_masks
from lmkit.nll import shifted_nll


def _ce(logits: Tensor, ids: Tensor) -> Tensor:
    nll, _ = shifted_nll(logits, ids)
    return nll.mean()


def mask_modes(g: dict[str, Tensor], lead: tuple[int, ...], gen: torch.Generator) -> dict[str, dict[str, ModuleMask]]:
    """The reference's eval masks: Δ only in `stochastic`; `rounded` is 1[g > 0]."""
    return {
        "unmasked": {n: ModuleMask(torch.ones_like(v)) for n, v in g.items()},
        "ci_masked": {n: ModuleMask(v) for n, v in g.items()},
        "stochastic": {n: ModuleMask(stochastic_masks(v, gen), delta_masks(lead, gen, device=v.device)) for n, v in g.items()},
        "rounded": {n: ModuleMask((v > 0).to(v.dtype)) for n, v in g.items()},
        "zero": {n: ModuleMask(torch.zeros_like(v)) for n, v in g.items()},
    }


def evaluate(dec, batches: list[Tensor], settings: EvalSettings, seed: int = 0) -> dict:
    """Metrics averaged over `batches`; `dec` is a Decomposer (its components and CI function)."""
    gen = torch.Generator(device=dec.device).manual_seed(seed)
    sums: dict[str, float] = {}
    ci_sum = {n: torch.zeros(dec.cm.C(n), device=dec.device) for n in dec.cm.names}
    n_tokens = 0

    def add(key: str, value: float) -> None:
        sums[key] = sums.get(key, 0.0) + value / len(batches)

    for ids in batches:
        ids = ids.to(dec.device)
        with dec.autocast():
            logits, inputs = dec.target_pass(ids)
            target = dec.output_target(logits)
            lm = dec.cfg.output_loss == "kl"
            with torch.no_grad():
                g, _ = dec.ci(inputs)
                if lm:
                    add("ce/target", _ce(logits, ids).item())
                for mode, specs in mask_modes(g, dec.cm.lead(ids), gen).items():
                    out = dec.cm.run(ids, specs)
                    if lm:
                        add(f"ce/{mode}", _ce(out, ids).item())
                    add(f"{dec.cfg.output_loss}/{mode}", target.mean(out).item())
            ctx = ReconContext(dec.cm, ids, g, target, gen, 0, 1)
            pgd = PgdReconConfig(n_steps=settings.pgd_steps, step_size=settings.pgd_step_size, shared=True, subset=False)
            routed = routing(ctx, subset=False)
            sources = pgd_sources(ctx, pgd, routed)
            with torch.no_grad():
                add(f"{dec.cfg.output_loss}/pgd", masked_kl(ctx, adversarial_specs(g, sources, routed)).item())
        for n, v in g.items():
            add(f"l0/{n}", (v > 0).sum(-1).float().mean().item())
            ci_sum[n] += v.float().reshape(-1, v.shape[-1]).sum(0)
        n_tokens += math.prod(dec.cm.lead(ids))

    names = dec.cm.names
    sums["l0/mean_per_matrix"] = sum(sums[f"l0/{n}"] for n in names) / len(names)
    sums["l0/total"] = sum(sums[f"l0/{n}"] for n in names)
    for n in names:
        sums[f"alive/{n}"] = int((ci_sum[n] / n_tokens > settings.alive_threshold).sum())
    sums["alive/total"] = sum(sums[f"alive/{n}"] for n in names)
    return sums
