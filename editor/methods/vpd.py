"""VPD: remove the decomposition's components that a forget set needs and retained data does not.

1. CI statistics on both sides: candidates are components more important on the forget set.
2. A relaxed removal (editor.relax) ranks the candidates jointly.
3. Prefixes of that ranking are removed from the real weights and measured (editor.search): the
   trade-off curve. One ranking and one curve serve every retain budget asked for; each budget's edit
   is the prefix that hurts the forget set most within it (or the first `max_components`).

Nothing here changes the model for good: every measurement applies and reverts its removal.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from pydantic import Field, PositiveInt, model_validator

from decompose.config_base import BaseConfig
from decompose.io import COMPONENTS, Decomposition
from decompose.stats import component_stats
from editor.apply import ComponentRef, removal_factors
from editor.edit import ComponentChange, Edit
from editor.errors import EditorError
from editor.explain import firing_tokens, promoted_tokens
from editor.methods.base import ForgetInputs, Method, Progress
from editor.paths import portable
from editor.relax import forget_token_weights, optimize_removal, prefix_sizes
from editor.search import choose_prefix, measure_prefixes
from editor.select import Candidate, rank_candidates
from lmkit.faults import failpoint
from lmkit.files import file_sha256
from lmkit.texts import sample_texts
from lmkit.tokens import Batches, context_length, document_batches

DEFAULT_BUDGET = 0.07  # nats of mean retain KL per token: the shipped default's selection budget


class VpdSettings(BaseConfig):
    """Every default of VPD's selection, in one place."""

    max_retain_kl: float | None = Field(
        DEFAULT_BUDGET, gt=0, description="Budget (the strength): mean KL(original ‖ edited) per retained token, averaged per document, nats."
    )
    max_components: PositiveInt | None = Field(None, description="Instead of a budget: remove the top K ranked candidates.")
    min_forget_density: float = Field(1e-3, ge=0, description="Candidates must fire on at least this fraction of forget tokens.")
    stats_docs: PositiveInt = Field(512, description="Documents per side (sampled) for CI statistics.")
    steps: int = Field(60, ge=0, description="Steps of the relaxed-removal optimisation that ranks candidates.")
    lr: float = Field(0.1, gt=0, description="Adam learning rate of the removal logits.")
    retain_weight: float = Field(3.0, ge=0, description="Weight of the retain KL against the forget loss while optimising.")
    sparsity: float = Field(1e-3, ge=0, description="Penalty per unit of removal: prefer fewer components.")
    token_margin: float = Field(1.0, ge=0, description="Next tokens count in the forget loss by max(0, log(freq ratio forget/retain) − margin).")
    opt_batch_size: PositiveInt = Field(32, description="Documents per side per optimisation step.")
    search_docs: PositiveInt = Field(128, description="Documents per side (sampled) for the causal check of the removals.")
    curve_points: PositiveInt = Field(10, description="Prefixes of the ranking measured causally (the trade-off curve).")
    batch_size: PositiveInt = Field(64, description="Documents per forward pass (statistics and checks).")
    explain_tokens: PositiveInt = Field(8, description="Firing / promoted tokens listed per removed component.")
    explain_docs: PositiveInt = Field(32, description="Forget documents (sampled) used to explain each removed component.")
    seed: int = Field(0, description="Seeds the document sampling.")

    @model_validator(mode="before")
    @classmethod
    def _one_budget(cls, data: Any) -> Any:
        """max_components replaces the retain budget; both at once is a contradiction."""
        if isinstance(data, dict) and data.get("max_components") is not None:
            if data.get("max_retain_kl") is not None:
                raise ValueError("set either max_retain_kl (the retain budget, --strength) or max_components, not both")
            data = {**data, "max_retain_kl": None}
        return data


def optimisation_batches(tokenizer, forget: list[str], retain: list[str], s: VpdSettings, ctx: int) -> tuple[Batches, Batches]:
    """The forget and retain batches the relaxed removal optimises on (a sample of each, seeded)."""
    opt_f, _ = document_batches(tokenizer, sample_texts(forget, s.stats_docs, s.seed + 2), ctx, s.opt_batch_size)
    opt_r, _ = document_batches(tokenizer, sample_texts(retain, s.stats_docs, s.seed + 3), ctx, s.opt_batch_size)
    return opt_f, opt_r


def decomposition_record(dec: Decomposition) -> dict[str, Any]:
    return {"name": dec.manifest.get("name"), "path": portable(str(Path(dec.path).resolve())), "sha256": file_sha256(dec.path / COMPONENTS)}


def vpd_run(inputs: ForgetInputs, settings: VpdSettings, strengths: list[float | None], progress: Progress) -> dict[float | None, Edit]:
    """One ranking and one trade-off curve; an Edit per retain budget in `strengths` (None: `max_components`)."""
    start = time.perf_counter()
    dec, tokenizer, s = inputs.decomposition, inputs.tokenizer, settings
    if dec is None:
        raise EditorError("VPD needs a decomposition of the model: pass --decomposition DIR (see `editor decompose`)")
    forget, retain = inputs.forget, inputs.retain
    if not forget:
        raise EditorError("the forget set is empty")
    if not retain:
        raise EditorError("the retain set is empty")
    cm = dec.cm
    warnings = []
    if set(forget) == set(retain):
        warnings.append("the retain set equals the forget set: no component can be specific to it")
    ctx = context_length(cm.model)
    progress.status("gathering causal-importance statistics")
    failpoint("forget.statistics")
    stats_f, truncated = document_batches(tokenizer, sample_texts(forget, s.stats_docs, s.seed), ctx, s.batch_size)
    if truncated:
        warnings.append(f"{truncated} forget documents were longer than the {ctx}-token context and were truncated")
    stats_r, _ = document_batches(tokenizer, sample_texts(retain, s.stats_docs, s.seed + 1), ctx, s.batch_size)
    candidates = rank_candidates(component_stats(cm, dec.ci_fn, stats_f), component_stats(cm, dec.ci_fn, stats_r), s.min_forget_density)
    if not candidates:
        # Warnings are printed only for a finished edit: say here why nothing can be specific.
        same = " (the retain set equals the forget set)" if set(forget) == set(retain) else ""
        raise EditorError(f"no component is more important on the forget set than on the retained data{same}; nothing to remove")
    weights = forget_token_weights(tokenizer, forget, retain, s.token_margin)
    if not bool((weights > 0).any()):
        weights = torch.ones_like(weights)  # no next token is specific to the forget set: use them all
        warnings.append("no token is markedly more frequent in the forget set than in the retained data; the forget loss counts every token")
    progress.status(f"ranking {len(candidates)} candidates by relaxed removal")
    failpoint("forget.ranking")
    total = s.steps + s.curve_points  # progress units: optimisation steps, then at most curve_points checks
    opt_f, opt_r = optimisation_batches(tokenizer, forget, retain, s, ctx)
    by_module = _by_module(candidates)
    removal = optimize_removal(
        cm,
        by_module,
        opt_f,
        opt_r,
        weights,
        steps=s.steps,
        lr=s.lr,
        retain_weight=s.retain_weight,
        sparsity=s.sparsity,
        on_step=lambda i, _: progress.step(i + 1, total),
    )
    ranked = _rank_by_removal(candidates, by_module, removal)
    chosen = sum(c.removal > 0.5 for c in ranked)
    n = s.max_components if s.max_components is not None else max(chosen, min(len(ranked), s.curve_points))
    sizes = prefix_sizes(min(n, len(ranked)), s.curve_points)
    progress.status(f"checking {len(sizes)} removals causally")
    search_f, _ = document_batches(tokenizer, sample_texts(forget, s.search_docs, s.seed + 4), ctx, s.batch_size)
    search_r, _ = document_batches(tokenizer, sample_texts(retain, s.search_docs, s.seed + 5), ctx, s.batch_size)
    done = iter(range(s.steps + 1, total + 1))
    base, curve = measure_prefixes(cm, ranked, sizes, search_f, search_r, weights, lambda p: progress.step(next(done), total))
    progress.step(total, total)
    budgets = [s.max_retain_kl] if s.max_components is not None else strengths
    results = {b: choose_prefix(ranked, base, curve, b) for b in budgets}
    empty = [b for b, r in results.items() if not r.selected]
    if len(empty) == len(results):
        smallest = min((p.retain_kl for p in curve), default=float("nan"))
        raise EditorError(
            f"no removal satisfies the retain budget (max_retain_kl {', '.join(f'{b:g}' for b in empty)}); the smallest retain KL "
            f"measured was {smallest:.4g}. Raise the budget (--strength) or remove a fixed number (--set max_components=K)."
        )
    progress.status("explaining removed components")
    longest = max(results.values(), key=lambda r: len(r.selected)).selected
    refs = [ComponentRef(c.module, c.index) for c in longest]
    explain_f, _ = document_batches(tokenizer, sample_texts(forget, s.explain_docs, s.seed + 6), ctx, s.batch_size)
    fires = firing_tokens(cm, dec.ci_fn, explain_f, refs, tokenizer, s.explain_tokens)
    promotes = promoted_tokens(cm, explain_f, refs, tokenizer, s.explain_tokens)
    record = decomposition_record(dec)
    seconds = time.perf_counter() - start
    edits = {}
    for budget, result in results.items():
        if not result.selected:
            continue
        changes = [_change(cm, c, fires, promotes) for c in result.selected]
        settings_used = s if s.max_components is not None else s.model_copy(update={"max_retain_kl": budget})
        edits[budget if s.max_components is None else strengths[0]] = Edit(
            method="vpd",
            summary=f"{len(changes)} rank-1 components removed",
            settings=settings_used.model_dump(mode="json"),
            strength={"field": "max_retain_kl", "value": settings_used.max_retain_kl},
            factors=removal_factors(cm, [ComponentRef(c.module, c.index) for c in result.selected]),
            components=changes,
            log={"candidates_ranked": len(candidates), "search": result.to_dict()},
            warnings=list(warnings),
            seconds=seconds,
            decomposition=record,
            data={"forget": {"truncated": truncated}},
        )
    return edits


def _change(cm, c: Candidate, fires: dict, promotes: dict) -> ComponentChange:
    comp = cm.comp(c.module)
    ref = ComponentRef(c.module, c.index)
    stats = {k: v for k, v in c.to_dict().items() if k not in ("module", "index")}
    return ComponentChange(
        module=c.module,
        index=c.index,
        change="removed",
        scale=0.0,
        norm=float(comp.U[c.index].detach().norm() * comp.V[:, c.index].detach().norm()),  # ‖u_c v_cᵀ‖_F
        stats=stats,
        fires_on=fires[ref],
        promotes=promotes[ref],
    )


def _by_module(candidates: list[Candidate]) -> dict[str, torch.Tensor]:
    out: dict[str, list[int]] = {}
    for c in candidates:
        out.setdefault(c.module, []).append(c.index)
    return {m: torch.tensor(sorted(i), dtype=torch.long) for m, i in out.items()}


def _rank_by_removal(candidates: list[Candidate], by_module: dict[str, torch.Tensor], removal: dict[str, torch.Tensor]) -> list[Candidate]:
    """Candidates with their optimised removal (`removal[m][j]` belongs to index `by_module[m][j]`), most
    removed first (ties: the specificity order)."""
    position = {m: {int(c): j for j, c in enumerate(idx)} for m, idx in by_module.items()}
    scored = [replace(c, removal=float(removal[c.module][position[c.module][c.index]])) for c in candidates]
    return sorted(scored, key=lambda c: -c.removal)  # stable: keeps the specificity order among ties


VPD = Method(
    "vpd",
    "remove the decomposition's components the forget set needs and retained data does not",
    VpdSettings,
    "max_retain_kl",
    (0.03, DEFAULT_BUDGET, 0.15),
    vpd_run,
    "The decomposition splits every attention and MLP matrix into rank-1 components with a learned causal-importance "
    "(CI) function. Candidates are the components with a higher mean CI on the forget set than on retained data "
    "(and firing on at least min_forget_density of forget tokens). A relaxed removal, W − Σ σ(θ_c) u_c v_cᵀ, "
    "optimised for {steps} Adam steps against the forget-specific next-token loss with retain_weight {retain_weight} × "
    "the retain KL, ranks them jointly. Prefixes of that ranking were then removed from the real weights and measured; "
    "the edit is the prefix that raises the forget loss most while the mean retain KL stays within max_retain_kl "
    "(or the first max_components).",
    needs_decomposition=True,
)
