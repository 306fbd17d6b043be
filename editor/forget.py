"""`editor forget` as a library call: statistics → ranked candidates → causal search → final edit + report.

The model is edited in place at the end (`ForgetPlan.applied` can revert it); writing files is
`editor.export`'s job, so a dry run is this function without the export.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from pydantic import Field, PositiveInt

from decompose.config_base import BaseConfig
from decompose.data import document_batches
from decompose.io import Decomposition
from decompose.stats import component_stats
from editor.apply import AppliedDelta, RemovedComponent, apply_delta, component_delta
from editor.errors import EditorError
from editor.explain import firing_tokens, promoted_tokens
from editor.search import SearchResult, causal_search
from editor.select import Candidate, rank_candidates
from evals.nll import context_length, mean_nll


class ForgetSettings(BaseConfig):
    """Every default of the forget pipeline, in one place."""

    max_retain_kl: float | None = Field(0.01, gt=0, description="Budget: mean KL(original ‖ edited) per retained token, nats.")
    max_components: PositiveInt | None = Field(None, description="Instead of a budget: remove the top K verified candidates.")
    max_tries: PositiveInt = Field(150, description="Candidates tried by the causal search, in ranked order.")
    min_gain: float = Field(1e-3, ge=0, description="Minimum forget-CE increase (nats) for a candidate to be kept.")
    min_forget_density: float = Field(1e-3, ge=0, description="Candidates must fire on at least this fraction of forget tokens.")
    stats_docs: PositiveInt = Field(1000, description="Documents per side (sampled) for CI statistics.")
    search_docs: PositiveInt = Field(128, description="Documents per side (sampled) for the causal search.")
    batch_size: PositiveInt = Field(64, description="Documents per forward pass.")
    explain_tokens: PositiveInt = Field(8, description="Firing / promoted tokens listed per removed component.")
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
        return dict(Counter(c.module for c in self.selected))


def texts_sha256(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8") + b"\x00")
    return h.hexdigest()


def _sample(texts: list[str], n: int, seed: int) -> list[str]:
    return texts if len(texts) <= n else random.Random(seed).sample(texts, n)


def plan_forget(
    dec: Decomposition,
    tokenizer,
    forget: list[str],
    retain: list[str],
    settings: ForgetSettings,
    status=lambda message: None,
    on_try=None,
) -> ForgetPlan:
    """Select, verify and apply the edit (the model ends edited; `plan.applied.revert()` undoes it)."""
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
    status(f"verifying {min(len(candidates), s.max_tries)} of {len(candidates)} candidates causally")
    search_f, _ = document_batches(tokenizer, _sample(forget, s.search_docs, s.seed + 2), ctx, s.batch_size)
    search_r, _ = document_batches(tokenizer, _sample(retain, s.search_docs, s.seed + 3), ctx, s.batch_size)
    result = causal_search(cm, candidates, search_f, search_r, s.max_retain_kl, s.max_components, s.max_tries, s.min_gain, on_try)
    if not result.selected:
        hurting = [p.retain_kl for p in result.curve if p.forget_ce >= result.base_forget_ce + s.min_gain]
        best = f"; the smallest retain KL among candidates that hurt the forget set was {min(hurting):.4g}" if hurting else ""
        raise EditorError(
            f"no component satisfies the retain budget (--max-retain-kl {s.max_retain_kl}){best}. "
            "Raise the budget or use --max-components."
        )
    removed = [RemovedComponent(c.module, c.index) for c in result.selected]
    status("measuring NLL before and after")
    eval_retain = _sample(retain, s.stats_docs, s.seed + 1)
    before = {"forget_nll": mean_nll(cm.model, tokenizer, forget).mean, "retain_nll": mean_nll(cm.model, tokenizer, eval_retain).mean}
    status("explaining removed components")
    explain_in = firing_tokens(cm, dec.ci_fn, search_f, removed, tokenizer, s.explain_tokens)
    explain_out = promoted_tokens(cm, search_f, removed, tokenizer, s.explain_tokens)
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
