"""`editor forget` as a library call: statistics → candidates → relaxed-removal ranking → causal check → edit + report.

The model is edited in place at the end (`ForgetPlan.applied` can revert it); writing files is
`editor.export`'s job, so a dry run is this function without the export.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field, replace

import torch
from pydantic import Field, PositiveInt

from decompose.config_base import BaseConfig
from decompose.data import document_batches
from decompose.io import Decomposition
from decompose.stats import component_stats
from editor.apply import AppliedDelta, RemovedComponent, apply_delta, component_delta
from editor.errors import EditorError
from editor.explain import firing_tokens, promoted_tokens
from editor.relax import forget_token_weights, optimize_removal, prefix_sizes
from editor.search import Batches, SearchResult, verify_prefixes
from editor.select import Candidate, rank_candidates
from evals.nll import context_length, mean_nll


class ForgetSettings(BaseConfig):
    """Every default of the forget pipeline, in one place."""

    max_retain_kl: float | None = Field(0.07, gt=0, description="Budget: mean KL(original ‖ edited) per retained token, averaged per document, nats.")
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


@dataclass
class ForgetPlan:
    selected: list[Candidate]
    search: SearchResult
    candidates: int
    metrics: dict[str, dict[str, float]]
    data: dict[str, dict]
    explain: dict[RemovedComponent, dict[str, list[str]]]
    warnings: list[str] = field(default_factory=list)
    applied: AppliedDelta | None = None
    seconds: float = 0.0

    @property
    def removed(self) -> list[RemovedComponent]:
        return [RemovedComponent(c.module, c.index) for c in self.selected]

    def per_module(self) -> dict[str, int]:
        return dict(sorted(Counter(c.module for c in self.selected).items()))


def texts_sha256(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8") + b"\x00")
    return h.hexdigest()


def _sample(texts: list[str], n: int, seed: int) -> list[str]:
    return texts if len(texts) <= n else random.Random(seed).sample(texts, n)


def optimisation_batches(tokenizer, forget: list[str], retain: list[str], s: ForgetSettings, ctx: int) -> tuple[Batches, Batches]:
    """The forget and retain batches the relaxed removal optimises on (a sample of each, seeded)."""
    opt_f, _ = document_batches(tokenizer, _sample(forget, s.stats_docs, s.seed + 2), ctx, s.opt_batch_size)
    opt_r, _ = document_batches(tokenizer, _sample(retain, s.stats_docs, s.seed + 3), ctx, s.opt_batch_size)
    return opt_f, opt_r


def plan_forget(
    dec: Decomposition,
    tokenizer,
    forget: list[str],
    retain: list[str],
    settings: ForgetSettings,
    status=lambda message: None,
    advance=lambda completed, total: None,
) -> ForgetPlan:
    """Select, verify and apply the edit (the model ends edited; `plan.applied.revert()` undoes it).

    1. CI statistics on both sides: candidates are components more important on the forget set.
    2. Relaxed removal (editor.relax) ranks the candidates jointly.
    3. Prefixes of that ranking are removed from the real weights and measured (editor.search)."""
    start = time.perf_counter()
    cm, s = dec.cm, settings
    if not forget:
        raise EditorError("the forget set is empty")
    if not retain:
        raise EditorError("the retain set is empty")
    warnings = []
    if set(forget) == set(retain):
        warnings.append("the retain set equals the forget set: no component can be specific to it")
    ctx = context_length(cm.model)
    status("gathering causal-importance statistics")
    stats_f, truncated = document_batches(tokenizer, _sample(forget, s.stats_docs, s.seed), ctx, s.batch_size)
    if truncated:
        warnings.append(f"{truncated} forget documents were longer than the {ctx}-token context and were truncated")
    stats_r, _ = document_batches(tokenizer, _sample(retain, s.stats_docs, s.seed + 1), ctx, s.batch_size)
    fstats = component_stats(cm, dec.ci_fn, stats_f)
    rstats = component_stats(cm, dec.ci_fn, stats_r)
    candidates = rank_candidates(fstats, rstats, s.min_forget_density)
    if not candidates:
        # Warnings are printed only for a finished plan: say here why nothing can be specific.
        same = " (the retain set equals the forget set)" if set(forget) == set(retain) else ""
        raise EditorError(f"no component is more important on the forget set than on the retained data{same}; nothing to remove")
    weights = forget_token_weights(tokenizer, forget, retain, s.token_margin)
    if not bool((weights > 0).any()):
        weights = torch.ones_like(weights)  # no next token is specific to the forget set: use them all
        warnings.append("no token is markedly more frequent in the forget set than in the retained data; the forget loss counts every token")
    status(f"ranking {len(candidates)} candidates by relaxed removal")
    total = s.steps + s.curve_points  # progress units: optimisation steps, then at most curve_points checks
    opt_f, opt_r = optimisation_batches(tokenizer, forget, retain, s, ctx)
    by_module = _by_module(candidates)
    removal = optimize_removal(
        cm, by_module, opt_f, opt_r, weights, steps=s.steps, lr=s.lr, retain_weight=s.retain_weight,
        sparsity=s.sparsity, on_step=lambda i, _: advance(i + 1, total),
    )
    ranked = _rank_by_removal(candidates, by_module, removal)
    chosen = sum(c.removal > 0.5 for c in ranked)
    n = s.max_components if s.max_components is not None else max(chosen, min(len(ranked), s.curve_points))
    sizes = prefix_sizes(min(n, len(ranked)), s.curve_points)
    status(f"checking {len(sizes)} removals causally")
    search_f, _ = document_batches(tokenizer, _sample(forget, s.search_docs, s.seed + 4), ctx, s.batch_size)
    search_r, _ = document_batches(tokenizer, _sample(retain, s.search_docs, s.seed + 5), ctx, s.batch_size)
    done = iter(range(s.steps + 1, total + 1))
    result = verify_prefixes(cm, ranked, sizes, search_f, search_r, weights, s.max_retain_kl, lambda p: advance(next(done), total))
    advance(total, total)
    if not result.selected:
        smallest = min((p.retain_kl for p in result.curve), default=float("nan"))
        raise EditorError(
            f"no removal satisfies the retain budget (--max-retain-kl {s.max_retain_kl}); the smallest retain KL "
            f"measured was {smallest:.4g}. Raise the budget or use --max-components."
        )
    removed = [RemovedComponent(c.module, c.index) for c in result.selected]
    status("measuring NLL before and after")
    eval_retain = _sample(retain, s.stats_docs, s.seed + 1)
    before = {"forget_nll": mean_nll(cm.model, tokenizer, forget).mean, "retain_nll": mean_nll(cm.model, tokenizer, eval_retain).mean}
    status("explaining removed components")
    explain_f, _ = document_batches(tokenizer, _sample(forget, s.explain_docs, s.seed + 6), ctx, s.batch_size)
    explain_in = firing_tokens(cm, dec.ci_fn, explain_f, removed, tokenizer, s.explain_tokens)
    explain_out = promoted_tokens(cm, explain_f, removed, tokenizer, s.explain_tokens)
    applied = apply_delta(cm.targets, component_delta(cm, removed))
    after = {"forget_nll": mean_nll(cm.model, tokenizer, forget).mean, "retain_nll": mean_nll(cm.model, tokenizer, eval_retain).mean}
    data = {
        "forget": {"documents": len(forget), "sha256": texts_sha256(forget), "truncated": truncated},
        "retain": {"documents": len(retain), "sha256": texts_sha256(retain), "evaluated": len(eval_retain)},
    }
    return ForgetPlan(
        selected=result.selected,
        search=result,
        candidates=len(candidates),
        metrics={"before": before, "after": after},
        data=data,
        explain={c: {"fires_on": explain_in[c], "promotes": explain_out[c]} for c in removed},
        warnings=warnings,
        applied=applied,
        seconds=time.perf_counter() - start,
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
