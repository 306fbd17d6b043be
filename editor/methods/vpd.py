"""What every VPD edit kind shares: the selection data, the candidates, the curve, the explanations, the Edit.

A VPD edit changes components of the decomposition (every attention and MLP matrix as a sum of rank-1
pieces u_c v_cᵀ with a causal-importance function). The kinds differ in *how* they change them:

* `vpd-write` (vpd_refit.py, the default `--method vpd`): learn a new write vector u_c + δ_c for the
  components whose output the forget set relies on most; when they fire is untouched;
* `vpd-scale` (vpd_refit.py): learn a signed prefactor per such component;
* `vpd-project` (vpd_project.py): remove from u_c its projection on the forget-specific tokens'
  unembedding directions, no training;
* `vpd-remove` (vpd_remove.py): subtract whole components (zero-ablation), ranked by a relaxed removal.

All of them: CI statistics on both sides give the candidates (components used more on the forget set),
each kind proposes a sequence of edits (a curve), every edit on the curve is checked on the real weights
on separate data (`editor.search.measure_deltas`), and each retain budget keeps the point that raises the
forget loss most within it. Nothing here changes the model for good.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import Field, PositiveInt
from torch import Tensor

from decompose.config_base import BaseConfig
from decompose.io import COMPONENTS, Decomposition
from decompose.stats import component_stats
from editor.apply import ComponentRef, Factors, factor_delta
from editor.edit import ComponentChange, Edit
from editor.errors import EditorError
from editor.explain import firing_tokens, lowered_tokens, mean_logprobs, promoted_tokens
from editor.methods.base import ForgetInputs, Progress
from editor.paths import portable
from editor.relax import forget_token_weights
from editor.search import CurvePoint, SearchResult
from editor.select import Candidate, rank_candidates
from lmkit.faults import failpoint
from lmkit.files import file_sha256
from lmkit.texts import sample_texts
from lmkit.tokens import Batches, context_length, document_batches

DEFAULT_BUDGET = 0.07  # nats of mean retain KL per token: the shipped default's selection budget
# One run explores one curve and every budget reads a point off it, so a dense sweep costs only the measuring.
BUDGET_SWEEP = (0.01, 0.02, 0.04, DEFAULT_BUDGET, 0.1, 0.15, 0.3)


class VpdSettings(BaseConfig):
    """The selection settings every VPD edit kind shares (each kind adds its own)."""

    max_retain_kl: float | None = Field(
        DEFAULT_BUDGET, gt=0, description="Budget (the strength): mean KL(original ‖ edited) per retained token, averaged per document, nats."
    )
    min_forget_density: float = Field(1e-3, ge=0, description="Candidates must fire on at least this fraction of forget tokens.")
    stats_docs: PositiveInt = Field(512, description="Documents per side (sampled) for CI statistics and for the optimisation batches.")
    token_margin: float = Field(1.0, ge=0, description="Next tokens count in the forget loss by max(0, log(freq ratio forget/retain) − margin).")
    opt_batch_size: PositiveInt = Field(32, description="Documents per side per optimisation step.")
    search_docs: PositiveInt = Field(128, description="Documents per side (sampled) for the causal check of the edits on the curve.")
    batch_size: PositiveInt = Field(64, description="Documents per forward pass (statistics and checks).")
    explain_tokens: PositiveInt = Field(8, description="Firing / promoted tokens listed per changed component.")
    explain_docs: PositiveInt = Field(32, description="Forget documents (sampled) used to explain each changed component.")
    explain_promoted: PositiveInt = Field(
        32, description="At most this many changed components (the most changed first) get their promoted tokens (one forward pass each)."
    )
    seed: int = Field(0, description="Seeds the document sampling.")


@dataclass
class Prepared:
    """The data and candidates of one VPD run, gathered once for every kind."""

    dec: Decomposition
    tokenizer: Any
    candidates: list[Candidate]  # components used more on the forget set, most specific first
    token_weights: Tensor  # per vocabulary id: how forget-specific a next token is
    opt_forget: Batches  # what the kinds optimise on
    opt_retain: Batches
    search_forget: Batches  # what every edit on the curve is checked on (other documents)
    search_retain: Batches
    forget: list[str]
    warnings: list[str]
    truncated: int

    @property
    def cm(self):
        return self.dec.cm


def prepare(inputs: ForgetInputs, s: VpdSettings, progress: Progress) -> Prepared:
    """CI statistics → candidates, forget-specific token weights, and the seeded document samples."""
    dec, tokenizer = inputs.decomposition, inputs.tokenizer
    if dec is None:
        raise EditorError("VPD needs a decomposition of the model: pass --decomposition DIR (see `editor decompose`)")
    forget, retain = inputs.forget, inputs.retain
    if not forget:
        raise EditorError("the forget set is empty")
    if not retain:
        raise EditorError("the retain set is empty")
    cm = dec.cm
    warnings = []
    same = set(forget) == set(retain)
    if same:
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
        why = " (the retain set equals the forget set)" if same else ""
        raise EditorError(f"no component is more important on the forget set than on the retained data{why}; nothing to change")
    weights = forget_token_weights(tokenizer, forget, retain, s.token_margin)
    if not bool((weights > 0).any()):
        weights = torch.ones_like(weights)  # no next token is specific to the forget set: use them all
        warnings.append("no token is markedly more frequent in the forget set than in the retained data; the forget loss counts every token")
    opt_f, opt_r = optimisation_batches(tokenizer, forget, retain, s, ctx)
    search_f, _ = document_batches(tokenizer, sample_texts(forget, s.search_docs, s.seed + 4), ctx, s.batch_size)
    search_r, _ = document_batches(tokenizer, sample_texts(retain, s.search_docs, s.seed + 5), ctx, s.batch_size)
    return Prepared(dec, tokenizer, candidates, weights, opt_f, opt_r, search_f, search_r, forget, warnings, truncated)


def optimisation_batches(tokenizer, forget: list[str], retain: list[str], s: VpdSettings, ctx: int) -> tuple[Batches, Batches]:
    """The forget and retain batches the kinds optimise on (a seeded sample of each)."""
    opt_f, _ = document_batches(tokenizer, sample_texts(forget, s.stats_docs, s.seed + 2), ctx, s.opt_batch_size)
    opt_r, _ = document_batches(tokenizer, sample_texts(retain, s.stats_docs, s.seed + 3), ctx, s.opt_batch_size)
    return opt_f, opt_r


def by_module(candidates: list[Candidate]) -> dict[str, Tensor]:
    """Candidate indices per module (sorted, long): the layout the hooks and scores use."""
    out: dict[str, list[int]] = {}
    for c in candidates:
        out.setdefault(c.module, []).append(c.index)
    return {m: torch.tensor(sorted(i), dtype=torch.long) for m, i in out.items()}


def no_edit_error(budgets: list[float], curve: list[CurvePoint], what: str = "edit", alternative: str = "") -> EditorError:
    smallest = min((p.retain_kl for p in curve), default=float("nan"))
    shown = ", ".join(f"{b:g}" for b in budgets)
    if budgets and smallest <= max(budgets):  # some point fits: none of those raised the forget loss on the checking data
        return EditorError(
            f"no {what} within the retain budget (max_retain_kl {shown}) raised the forget loss on the checking data; "
            f"change more (e.g. --set steps=, --set lr= or --set components=){alternative}."
        )
    return EditorError(
        f"no {what} satisfies the retain budget (max_retain_kl {shown}); the smallest retain KL measured was {smallest:.4g}. Raise the budget (--strength){alternative}."
    )


def decomposition_record(dec: Decomposition) -> dict[str, Any]:
    return {"name": dec.manifest.get("name"), "path": portable(str(Path(dec.path).resolve())), "sha256": file_sha256(dec.path / COMPONENTS)}


@dataclass(frozen=True)
class KindResult:
    """One budget's edit from a kind: the search record, the factors, and each changed component's change."""

    search: SearchResult
    factors: Factors
    changes: dict[ComponentRef, tuple[str, float | None, float]]  # component → (change, scale, ‖Δu_c‖/‖u_c‖)
    summary: str


def vpd_edits(
    method: str,
    prep: Prepared,
    s: VpdSettings,
    results: dict[float | None, KindResult],
    log: dict[str, Any],
    seconds: float,
    progress: Progress,
) -> dict[float | None, Edit]:
    """The Edits of one run, one per budget with a non-empty change, each component explained in tokens."""
    progress.status("explaining changed components")
    refs = sorted({r for res in results.values() for r in res.changes}, key=lambda r: (r.module, r.index))
    ctx = context_length(prep.cm.model)
    explain_f, _ = document_batches(prep.tokenizer, sample_texts(prep.forget, s.explain_docs, s.seed + 6), ctx, s.batch_size)
    fires = firing_tokens(prep.cm, prep.dec.ci_fn, explain_f, refs, prep.tokenizer, s.explain_tokens)
    change_of = {r: (rel, float(prep.cm.comp(r.module).U[r.index].detach().norm())) for res in results.values() for r, (_, _, rel) in res.changes.items()}
    most_changed = sorted(refs, key=lambda r: change_of[r], reverse=True)[: s.explain_promoted]
    promotes = promoted_tokens(prep.cm, explain_f, most_changed, prep.tokenizer, s.explain_tokens)
    base_logprobs = mean_logprobs(prep.cm.model, explain_f)
    stats = {(c.module, c.index): c for c in prep.candidates}
    record = decomposition_record(prep.dec)
    edits = {}
    for budget, res in results.items():
        changes = []
        for ref, (change, scale, relative) in res.changes.items():
            comp = prep.cm.comp(ref.module)
            cand = stats.get((ref.module, ref.index))
            changes.append(
                ComponentChange(
                    module=ref.module,
                    index=ref.index,
                    change=change,
                    scale=scale,
                    relative_change=relative,
                    norm=float(comp.U[ref.index].detach().norm() * comp.V[:, ref.index].detach().norm()),  # ‖u_c v_cᵀ‖_F
                    stats={k: v for k, v in cand.to_dict().items() if k not in ("module", "index")} if cand else {},
                    fires_on=fires[ref],
                    promotes=promotes.get(ref, []),
                )
            )
        settings_used = s.model_copy(update={"max_retain_kl": budget}) if budget is not None else s
        edits[budget] = Edit(
            method=method,
            summary=res.summary,
            settings=settings_used.model_dump(mode="json"),
            strength={"field": "max_retain_kl", "value": settings_used.max_retain_kl},
            factors=res.factors,
            components=changes,
            log={
                "candidates_ranked": len(prep.candidates),
                **log,
                "search": res.search.to_dict(),
                # what the whole edit takes away, in tokens: the largest drops of mean log-probability on forget data
                "lowers": lowered_tokens(prep.cm, explain_f, factor_delta(res.factors), prep.tokenizer, s.explain_tokens, base_logprobs),
            },
            warnings=list(prep.warnings),
            seconds=seconds,
            decomposition=record,
            data={"forget": {"truncated": prep.truncated}},
        )
    return edits
