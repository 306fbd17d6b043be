"""`vpd-write` and `vpd-scale`: learn what the selected components write (or how strongly), keep when they fire.

1. Candidates as for every VPD kind (used more on the forget set than on retained data, `vpd.prepare`).
2. Output-side selection (`editor.output_side`): the `components` candidates whose write the forget set's
   specific next tokens rely on most (first-order rise of the forget loss when each is turned down).
3. `editor.refit.train_refit` learns their change: a new write vector u_c + δ_c (`vpd-write`) or a signed
   prefactor 1 + t_c (`vpd-scale`), against the capped forget loss and the retain KL, with snapshots.
4. Every snapshot is applied to the real weights and checked on separate data; each retain budget keeps
   the snapshot that raises the forget loss most within it.

ΔW = Σ_{c∈S} δ_c v_cᵀ has rank ≤ |S| per matrix and is exported exactly as LoRA (A = the components' read
vectors, B = the learned write changes).
"""

from __future__ import annotations

import time
from functools import partial

import torch
from pydantic import Field, PositiveInt

from editor.apply import ComponentRef, factor_delta
from editor.edit import Edit
from editor.methods.base import ForgetInputs, Method, Progress
from editor.methods.vpd import BUDGET_SWEEP, KindResult, Prepared, VpdSettings, by_module, no_edit_error, prepare, vpd_edits
from editor.output_side import output_scores
from editor.refit import Kind, Refit, train_refit
from editor.search import SearchResult, choose_point, measure_deltas
from editor.select import Candidate
from lmkit.faults import failpoint


class RefitSettings(VpdSettings):
    """Every default of the learned kinds (the two differ only in the learning rate)."""

    # Chosen on the validation split (training toxic tweets outside the forget set), never the held-out sets:
    # 30 / 100 / 300 / 1000 components closed 10 / 19 / 30 / 18% of the gap at 1.0 / 1.3 / 1.5 / 1.6% damage.
    # The largest budget of the validation sweep that kept both retain sets within +2% NLL: 0.1 closed 29.4% of the
    # gap at WikiText +0.82% / benign +1.92%; 0.145 closed 41.1% but benign rose 2.12% (forget_frontier.py --split validation).
    max_retain_kl: float | None = Field(0.1, gt=0, description=VpdSettings.model_fields["max_retain_kl"].description)
    components: PositiveInt = Field(300, description="How many candidates change: the top of the output-side ranking.")
    score_batches: PositiveInt = Field(4, description="Forget batches the output-side scores are summed over.")
    steps: PositiveInt = Field(150, description="Adam steps of the learned change.")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate of the change.")
    retain_weight: float = Field(10.0, ge=0, description="Weight of the retain KL against the forget loss (at the start).")
    retain_weight_final: float | None = Field(None, ge=0, description="Anneal the retain weight geometrically to this by the last step (None: constant).")
    cap: float = Field(8.0, gt=0, description="Each forget-specific token's NLL counts up to this many nats (a suppressed token stops pulling).")
    l2: float = Field(0.0, ge=0, description="Penalty on the squared size of the change.")
    snapshot_every: PositiveInt = Field(10, description="Steps between snapshots checked on the real weights (the trade-off curve).")


class ScaleSettings(RefitSettings):
    # A prefactor has one degree of freedom per component: at retain_weight 10 it barely moves within any budget
    # (1.3% of the gap on the validation split), so it gets a faster rate and a lighter retain term.
    lr: float = Field(5e-2, gt=0, description="Adam learning rate of the prefactors.")
    retain_weight: float = Field(3.0, ge=0, description="Weight of the retain KL against the forget loss (at the start).")


def select_output_side(prep: Prepared, components: int, score_batches: int) -> list[Candidate]:
    """The `components` candidates with the largest output-side score (over `score_batches` forget batches)."""
    modules = by_module(prep.candidates)
    scores = output_scores(prep.cm, modules, prep.opt_forget[:score_batches], prep.token_weights)
    position = {m: {int(c): j for j, c in enumerate(idx)} for m, idx in modules.items()}
    scored = [(float(scores[c.module][position[c.module][c.index]]), c) for c in prep.candidates]
    top = sorted(scored, key=lambda sc: -sc[0])[:components]
    return [c for _, c in top]


def refit_run(kind: Kind, inputs: ForgetInputs, settings: RefitSettings, strengths: list[float | None], progress: Progress) -> dict[float | None, Edit]:
    start = time.perf_counter()
    s = settings
    prep = prepare(inputs, s, progress)
    progress.status(f"choosing {s.components} of {len(prep.candidates)} candidates by what they write")
    failpoint("forget.ranking")
    selected = select_output_side(prep, s.components, s.score_batches)
    refit = Refit(prep.cm, by_module(selected), kind)
    total = s.steps + -(-s.steps // s.snapshot_every)  # progress units: training steps, then the checks
    progress.status(f"learning the change of {len(selected)} components")
    snapshots = train_refit(
        refit,
        prep.opt_forget,
        prep.opt_retain,
        prep.token_weights,
        steps=s.steps,
        lr=s.lr,
        retain_weight=s.retain_weight,
        retain_weight_final=s.retain_weight_final,
        cap=s.cap,
        l2=s.l2,
        snapshot_every=s.snapshot_every,
        on_step=lambda i, _: progress.step(i, total),
    )
    progress.status(f"checking {len(snapshots)} snapshots causally")
    done = iter(range(s.steps + 1, total + 1))
    base, curve = measure_deltas(
        prep.cm,
        ((step, factor_delta(f)) for step, f in snapshots),
        prep.search_forget,
        prep.search_retain,
        prep.token_weights,
        lambda p: progress.step(next(done), total),
    )
    progress.step(total, total)
    factors_at = dict(snapshots)
    results = {}
    for budget in strengths:
        marked, best = choose_point(base, curve, budget)
        if best is None:
            continue
        factors = factors_at[best.at]
        changes = _changes(prep, kind, selected, factors)
        verb = "rewritten" if kind == "write" else "rescaled"
        search = SearchResult(selected, marked, base, best, axis="steps")
        results[budget] = KindResult(search, factors, changes, f"{len(selected)} rank-1 components {verb} ({best.at} steps)")
    if not results:
        raise no_edit_error([b for b in strengths if b is not None], curve)
    log = {"selection": "output-side", "components_changed": len(selected)}
    return vpd_edits(f"vpd-{kind}", prep, s, results, log, time.perf_counter() - start, progress)


def _changes(prep: Prepared, kind: Kind, selected: list[Candidate], factors) -> dict[ComponentRef, tuple[str, float | None, float]]:
    """Per changed component: its change, its new prefactor (scale kind) and ‖Δu_c‖/‖u_c‖."""
    out: dict[ComponentRef, tuple[str, float | None, float]] = {}
    modules = by_module(selected)
    for m, idx in modules.items():
        _, b = factors[m]  # (d_out, k): column j is component idx[j]'s write change
        U = prep.cm.comp(m).U.detach()
        for j, c in enumerate(idx.tolist()):
            u = U[c].float()
            relative = float(b[:, j].norm() / u.norm().clamp(min=1e-12))
            if kind == "scale":
                t = float(torch.dot(b[:, j], u) / torch.dot(u, u).clamp(min=1e-12))
                out[ComponentRef(m, c)] = ("scaled", 1.0 + t, relative)
            else:
                out[ComponentRef(m, c)] = ("rewritten", None, relative)
    return out


_HOW = (
    "The decomposition splits every attention and MLP matrix into rank-1 components u_c v_cᵀ with a learned "
    "causal-importance (CI) function. Candidates are the components with a higher mean CI on the forget set than on "
    "retained data; of those, the {components} whose output the forget set's specific next tokens rely on most (the "
    "first-order rise of the token-weighted forget loss when each is turned down) were changed. {what} was learned for "
    "{steps} Adam steps (lr {lr}) against the forget-specific next-token loss (each token capped at {cap} nats) minus "
    "retain_weight {retain_weight} × the retain KL to the original; when the components fire is unchanged. Snapshots "
    "were applied to the real weights and checked on other documents; the edit is the snapshot that raises the forget "
    "loss most while the mean retain KL stays within max_retain_kl."
)
VPD_WRITE = Method(
    "vpd-write",
    "rewrite what the components the forget set relies on write (default VPD edit)",
    RefitSettings,
    "max_retain_kl",
    BUDGET_SWEEP,
    partial(refit_run, "write"),
    _HOW.replace("{what}", "A new write vector u_c + δ_c per component"),
    needs_decomposition=True,
)
VPD_SCALE = Method(
    "vpd-scale",
    "learn a signed prefactor for each component the forget set relies on",
    ScaleSettings,
    "max_retain_kl",
    BUDGET_SWEEP,
    partial(refit_run, "scale"),
    _HOW.replace("{what}", "A signed prefactor 1 + t_c per component (W + Σ t_c u_c v_cᵀ)"),
    needs_decomposition=True,
)
