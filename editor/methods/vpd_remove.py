"""`vpd-remove`: subtract whole components (zero-ablation), W ← W − Σ_{c∈S} u_c v_cᵀ.

A relaxed removal (editor.relax) ranks the candidates jointly; prefixes of that ranking are removed from
the real weights and checked; each retain budget keeps the prefix that hurts the forget set most within
it (or the first `max_components`). One ranking and one curve serve every budget.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import torch
from pydantic import Field, PositiveInt, model_validator

from editor.apply import ComponentRef, removal_factors
from editor.edit import Edit
from editor.methods.base import ForgetInputs, Method, Progress
from editor.methods.vpd import BUDGET_SWEEP, KindResult, VpdSettings, by_module, no_edit_error, prepare, vpd_edits
from editor.relax import optimize_removal, prefix_sizes
from editor.search import choose_prefix, measure_prefixes
from editor.select import Candidate
from lmkit.faults import failpoint


class RemoveSettings(VpdSettings):
    """Every default of the removal kind."""

    max_components: PositiveInt | None = Field(None, description="Instead of a budget: remove the top K ranked candidates.")
    steps: int = Field(60, ge=0, description="Steps of the relaxed-removal optimisation that ranks candidates.")
    lr: float = Field(0.1, gt=0, description="Adam learning rate of the removal logits.")
    retain_weight: float = Field(3.0, ge=0, description="Weight of the retain KL against the forget loss while optimising.")
    sparsity: float = Field(1e-3, ge=0, description="Penalty per unit of removal: prefer fewer components.")
    curve_points: PositiveInt = Field(10, description="Prefixes of the ranking measured causally (the trade-off curve).")

    @model_validator(mode="before")
    @classmethod
    def _one_budget(cls, data: Any) -> Any:
        """max_components replaces the retain budget; both at once is a contradiction."""
        if isinstance(data, dict) and data.get("max_components") is not None:
            if data.get("max_retain_kl") is not None:
                raise ValueError("set either max_retain_kl (the retain budget, --strength) or max_components, not both")
            data = {**data, "max_retain_kl": None}
        return data


def remove_run(inputs: ForgetInputs, settings: RemoveSettings, strengths: list[float | None], progress: Progress) -> dict[float | None, Edit]:
    """One ranking and one trade-off curve; an Edit per retain budget in `strengths` (None: `max_components`)."""
    start = time.perf_counter()
    s = settings
    prep = prepare(inputs, s, progress)
    cm, candidates = prep.cm, prep.candidates
    progress.status(f"ranking {len(candidates)} candidates by relaxed removal")
    failpoint("forget.ranking")
    total = s.steps + s.curve_points  # progress units: optimisation steps, then at most curve_points checks
    modules = by_module(candidates)
    removal = optimize_removal(
        cm,
        modules,
        prep.opt_forget,
        prep.opt_retain,
        prep.token_weights,
        steps=s.steps,
        lr=s.lr,
        retain_weight=s.retain_weight,
        sparsity=s.sparsity,
        on_step=lambda i, _: progress.step(i + 1, total),
    )
    ranked = _rank_by_removal(candidates, modules, removal)
    chosen = sum(c.removal > 0.5 for c in ranked)
    n = s.max_components if s.max_components is not None else max(chosen, min(len(ranked), s.curve_points))
    sizes = prefix_sizes(min(n, len(ranked)), s.curve_points)
    progress.status(f"checking {len(sizes)} removals causally")
    done = iter(range(s.steps + 1, total + 1))
    base, curve = measure_prefixes(cm, ranked, sizes, prep.search_forget, prep.search_retain, prep.token_weights, lambda p: progress.step(next(done), total))
    progress.step(total, total)
    budgets = [s.max_retain_kl] if s.max_components is not None else strengths
    searches = {b: choose_prefix(ranked, base, curve, b) for b in budgets}
    if not any(r.selected for r in searches.values()):
        raise no_edit_error([b for b in budgets if b is not None], curve, "removal", " or remove a fixed number (--set max_components=K)")
    results = {}
    for b, r in searches.items():
        if not r.selected:
            continue
        refs = [ComponentRef(c.module, c.index) for c in r.selected]
        key = b if s.max_components is None else strengths[0]
        results[key] = KindResult(r, removal_factors(cm, refs), {ref: ("removed", 0.0, 1.0) for ref in refs}, f"{len(refs)} rank-1 components removed")
    return vpd_edits("vpd-remove", prep, s, results, {}, time.perf_counter() - start, progress)


def _rank_by_removal(candidates: list[Candidate], modules: dict[str, torch.Tensor], removal: dict[str, torch.Tensor]) -> list[Candidate]:
    """Candidates with their optimised removal (`removal[m][j]` belongs to index `modules[m][j]`), most
    removed first (ties: the specificity order)."""
    position = {m: {int(c): j for j, c in enumerate(idx)} for m, idx in modules.items()}
    scored = [replace(c, removal=float(removal[c.module][position[c.module][c.index]])) for c in candidates]
    return sorted(scored, key=lambda c: -c.removal)  # stable: keeps the specificity order among ties


VPD_REMOVE = Method(
    "vpd-remove",
    "remove the decomposition's components the forget set needs and retained data does not",
    RemoveSettings,
    "max_retain_kl",
    BUDGET_SWEEP,
    remove_run,
    "The decomposition splits every attention and MLP matrix into rank-1 components with a learned causal-importance "
    "(CI) function. Candidates are the components with a higher mean CI on the forget set than on retained data "
    "(and firing on at least min_forget_density of forget tokens). A relaxed removal, W − Σ σ(θ_c) u_c v_cᵀ, "
    "optimised for {steps} Adam steps against the forget-specific next-token loss with retain_weight {retain_weight} × "
    "the retain KL, ranks them jointly. Prefixes of that ranking were then removed from the real weights and measured; "
    "the edit is the prefix that raises the forget loss most while the mean retain KL stays within max_retain_kl "
    "(or the first max_components).",
    needs_decomposition=True,
)
