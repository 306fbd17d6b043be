"""`vpd-project`: take out of what components write the directions that raise the forget-specific tokens.

For a component c of a matrix that writes into the residual stream (attention output, MLP down
projection), u_c ← u_c − P u_c, where P projects onto the span of g ⊙ e_t for the `tokens` most
forget-specific next tokens t (e_t: the token's unembedding row, g: the final norm's gain): the VPD
paper's own edit, which added an unembedding direction to a write vector, run in reverse. No training:
residual-writing candidates are ranked output-side (`editor.output_side`), prefixes of that ranking are
projected on the real weights and checked, and each retain budget keeps the best prefix within it.
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch
from pydantic import Field, PositiveInt
from torch import Tensor

from decompose.targets import is_residual_writer
from editor.apply import ComponentRef, Factors, factor_delta
from editor.edit import Edit
from editor.errors import EditorError
from editor.methods.base import ForgetInputs, Method, Progress
from editor.methods.vpd import BUDGET_SWEEP, KindResult, VpdSettings, no_edit_error, prepare, vpd_edits
from editor.methods.vpd_refit import select_output_side
from editor.relax import prefix_sizes
from editor.search import SearchResult, choose_point, measure_deltas
from lmkit.faults import failpoint


class ProjectSettings(VpdSettings):
    """Every default of the projection kind."""

    tokens: PositiveInt = Field(20, description="How many of the most forget-specific next tokens span the removed write directions.")
    components: PositiveInt = Field(256, description="The longest prefix of the output-side ranking of residual writers projected.")
    score_batches: PositiveInt = Field(4, description="Forget batches the output-side scores are summed over.")
    curve_points: PositiveInt = Field(10, description="Prefixes of the ranking projected and checked (the trade-off curve).")


def _final_norm_gain(model) -> Tensor | None:
    for name, module in model.named_modules():
        if name.endswith(("model.norm", "ln_f", "final_layer_norm")) and getattr(module, "weight", None) is not None:
            return module.weight.detach().float()
    return None


def forget_write_basis(model, token_weights: Tensor, tokens: int) -> Tensor:
    """(d_model, k) orthonormal basis of the residual directions that raise the `tokens` most forget-specific tokens."""
    unembed = model.get_output_embeddings()
    if unembed is None:
        raise EditorError("vpd-project needs the model's output embeddings (unembedding) to know what a write promotes")
    top = token_weights.argsort(descending=True)[: min(tokens, int((token_weights > 0).sum()) or tokens)]
    rows = unembed.weight.detach().float()[top]  # (k, d_model)
    gain = _final_norm_gain(model)
    if gain is not None and gain.shape[0] == rows.shape[1]:
        rows = rows * gain
    q, _ = torch.linalg.qr(rows.T)
    return q


def projection_factors(cm, refs: list[ComponentRef], basis: Tensor) -> Factors:
    """Per module: A = the components' read vectors v_cᵀ, B = −P u_c (ΔW = −Σ (P u_c) v_cᵀ)."""
    by: dict[str, list[int]] = {}
    for r in refs:
        by.setdefault(r.module, []).append(r.index)
    out = {}
    with torch.no_grad():
        for m, idx in by.items():
            comp = cm.comp(m)
            sel = torch.tensor(sorted(idx))
            U = comp.U.detach()[sel].float()  # (k, d_out)
            out[m] = (comp.V.detach()[:, sel].float().T.contiguous(), (-(U @ basis) @ basis.T).T.contiguous())
    return out


def project_run(inputs: ForgetInputs, settings: ProjectSettings, strengths: list[float | None], progress: Progress) -> dict[float | None, Edit]:
    start = time.perf_counter()
    s = settings
    prep = prepare(inputs, s, progress)
    model = prep.cm.model
    writers = [c for c in prep.candidates if is_residual_writer(model, c.module)]
    if not writers:
        raise EditorError("no candidate component writes into the residual stream (attention output or MLP down projection); use another --method")
    progress.status(f"ranking {len(writers)} residual-writing candidates by what they write")
    failpoint("forget.ranking")
    ranked = select_output_side(replace(prep, candidates=writers), s.components, s.score_batches)
    basis = forget_write_basis(model, prep.token_weights, s.tokens)
    refs = [ComponentRef(c.module, c.index) for c in ranked]
    sizes = prefix_sizes(len(refs), s.curve_points)
    factors_at = {k: projection_factors(prep.cm, refs[:k], basis) for k in sizes}
    progress.status(f"checking {len(sizes)} projections causally")
    base, curve = measure_deltas(prep.cm, ((k, factor_delta(f)) for k, f in factors_at.items()), prep.search_forget, prep.search_retain, prep.token_weights)
    results = {}
    for budget in strengths:
        marked, best = choose_point(base, curve, budget)
        if best is None:
            continue
        factors = factors_at[best.at]
        changes: dict[ComponentRef, tuple[str, float | None, float]] = {}
        for r in refs[: best.at]:
            u = prep.cm.comp(r.module).U.detach()[r.index].float()
            changes[r] = ("write-projected", None, float((u @ basis).norm() / u.norm().clamp(min=1e-12)))
        search = SearchResult(ranked[: best.at], marked, base, best, axis="projected")
        results[budget] = KindResult(search, factors, changes, f"{best.at} rank-1 components write-projected ({basis.shape[1]} token directions)")
    if not results:
        raise no_edit_error([b for b in strengths if b is not None], curve)
    log = {"selection": "output-side", "projected_tokens": basis.shape[1]}
    return vpd_edits("vpd-project", prep, s, results, log, time.perf_counter() - start, progress)


VPD_PROJECT = Method(
    "vpd-project",
    "remove the forget tokens' unembedding directions from what the components write",
    ProjectSettings,
    "max_retain_kl",
    BUDGET_SWEEP,
    project_run,
    "The decomposition splits every attention and MLP matrix into rank-1 components u_c v_cᵀ with a learned "
    "causal-importance function. Residual-writing candidates (used more on the forget set than on retained data) were "
    "ranked by how much the forget set's specific next tokens rely on what they write; for a prefix of that ranking, "
    "u_c lost its projection on the span of the unembedding directions of the {tokens} most forget-specific tokens. "
    "Prefixes were applied to the real weights and checked; the edit is the prefix that raises the forget loss most "
    "while the mean retain KL stays within max_retain_kl.",
    needs_decomposition=True,
)
