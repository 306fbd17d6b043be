"""Every VPD edit kind through the same checks on the session's tiny decomposition, plus the pieces they share:
output-side scores against finite differences, the capped forget loss, and the learned change's exact factors."""

from __future__ import annotations

import json

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from decompose.io import load_decomposition
from editor.apply import apply_factors, factor_delta
from editor.methods import METHODS, get_method
from editor.methods.base import ForgetInputs, Progress
from editor.model_io import load_model
from editor.output_side import output_scores
from editor.refit import Refit, capped_forget_loss
from editor.relax import forget_token_weights
from editor.search import weighted_forget_loss
from lmkit.texts import load_texts
from lmkit.tokens import document_batches
from tests.editor.clitools import CONTEXT, Workspace, assert_clean, invoke

KINDS = [n for n, m in METHODS.items() if m.needs_decomposition]
# Small but decisive settings for a 2-layer hidden-32 model: few documents, few steps, a high learning rate.
SMALL = {"stats_docs": 32, "search_docs": 16, "explain_docs": 4, "opt_batch_size": 8, "explain_promoted": 3}
PER_KIND = {
    "vpd-write": {"components": 6, "steps": 12, "snapshot_every": 4, "lr": 0.05, "retain_weight": 1.0},
    "vpd-scale": {"components": 6, "steps": 12, "snapshot_every": 4, "lr": 0.2, "retain_weight": 1.0},
    "vpd-project": {"components": 8, "curve_points": 4, "tokens": 4},
    "vpd-remove": {"steps": 6, "curve_points": 4},
}


@pytest.fixture(scope="module")
def setup(workspace: Workspace):
    model, tok = load_model(str(workspace.model))
    dec = load_decomposition(model, workspace.dec)
    forget = load_texts(workspace.toxic).texts[:64]
    retain = load_texts(workspace.retain).texts[:64]
    return model, tok, dec, forget, retain


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", KINDS)
def test_kind_returns_exact_low_rank_edits_within_budget_and_leaves_the_model_alone(name, setup):
    model, tok, dec, forget, retain = setup
    kind = METHODS[name]
    settings = kind.settings(**SMALL, **PER_KIND[name])
    before = _weights(model)
    budgets = [1e-4, 10.0]
    edits = kind.run(ForgetInputs(model, tok, forget, retain, dec), settings, budgets, Progress())
    assert all(torch.equal(before[k], v) for k, v in _weights(model).items())
    assert 10.0 in edits  # a generous budget always admits some edit
    for budget, edit in edits.items():
        assert edit.method == name and edit.strength == {"field": "max_retain_kl", "value": budget}
        search = edit.log["search"]
        assert search["final"]["retain_kl"] <= budget and search["final"]["forget_loss"] > search["base"]["forget_loss"]
        assert edit.components and edit.rank <= sum(int(dec.cm.C(m)) for m in edit.factors)
        changed = {c.module for c in edit.components}
        assert set(edit.factors) == changed
        for c in edit.components:
            assert c.change in ("removed", "rewritten", "scaled", "write-projected") and c.relative_change > 0
            assert c.fires_on
        explained = [c for c in edit.components if c.promotes]  # the most changed ones, up to explain_promoted
        assert len(explained) == min(len(edit.components), settings.explain_promoted)
        assert min((c.relative_change for c in explained), default=0) >= max((c.relative_change for c in edit.components if not c.promotes), default=0)
        assert edit.log["lowers"] and all(isinstance(t, str) for t in edit.log["lowers"])
        for m, (a, b) in edit.factors.items():  # A holds the changed components' read vectors v_cᵀ
            idx = sorted(c.index for c in edit.components if c.module == m)
            torch.testing.assert_close(a, dec.cm.comp(m).V.detach()[:, idx].T.float())
            assert b.shape == (dec.cm.targets[m].d_out, len(idx))
    big = edits[10.0]
    applied = big.apply(model)  # the recorded delta is what gets applied, and it reverts bit for bit
    try:
        for m, d in big.delta().items():
            torch.testing.assert_close(dec.cm.targets[m].weight().float() - before[m + ".weight"].float(), d, atol=1e-6, rtol=0)
    finally:
        applied.revert()
    assert all(torch.equal(before[k], v) for k, v in _weights(model).items())


def test_scale_changes_only_prefactors_and_project_only_the_token_directions(setup):
    model, tok, dec, forget, retain = setup
    inputs = ForgetInputs(model, tok, forget, retain, dec)
    scale = METHODS["vpd-scale"]
    edit = scale.run(inputs, scale.settings(**SMALL, **PER_KIND["vpd-scale"]), [10.0], Progress())[10.0]
    for c in edit.components:
        u = dec.cm.comp(c.module).U.detach()[c.index].float()
        col = sorted(x.index for x in edit.components if x.module == c.module).index(c.index)
        torch.testing.assert_close(edit.factors[c.module][1][:, col], (c.scale - 1.0) * u, atol=1e-6, rtol=1e-5)  # B column = t_c u_c
    project = METHODS["vpd-project"]
    edit = project.run(inputs, project.settings(**SMALL, **PER_KIND["vpd-project"]), [10.0], Progress())[10.0]
    assert all(c.module.endswith(("o_proj", "down_proj")) and c.relative_change <= 1 + 1e-6 for c in edit.components)
    for _, b in edit.factors.values():  # every write change lies in one k-dimensional span (k = tokens)
        assert torch.linalg.matrix_rank(b) <= PER_KIND["vpd-project"]["tokens"]


def test_output_scores_match_finite_differences(setup):
    model, tok, dec, forget, retain = setup
    cm = dec.cm
    weights = forget_token_weights(tok, forget, retain, 0.0)
    batches, _ = document_batches(tok, forget[:16], CONTEXT, 8)
    cands = {n: torch.arange(cm.C(n)) for n in (cm.names[0], cm.names[-1])}
    scores = output_scores(cm, cands, batches, weights)
    top = sorted(((abs(float(v[j])), n, j) for n, v in scores.items() for j in range(len(v))), reverse=True)[:3]

    def loss_with(module: str, j: int, t: float) -> float:
        refit = Refit(cm, {module: cands[module]}, "scale")
        with torch.no_grad():
            refit.params[module][j] = t
        with refit.hooked(), torch.no_grad():
            return sum(float(weighted_forget_loss(model, i, m, weights)) for i, m in batches)

    eps = 0.05  # central differences: float32 noise is far below the scores of the most active components
    for _, module, j in top:
        numeric = -(loss_with(module, j, eps) - loss_with(module, j, -eps)) / (2 * eps)
        assert scores[module][j].item() == pytest.approx(numeric, rel=5e-2)


def test_capped_forget_loss_stops_pulling_on_suppressed_tokens(setup):
    model, tok, _, forget, retain = setup
    ids, mask = document_batches(tok, forget[:8], CONTEXT, 8)[0][0]
    weights = torch.ones(len(tok))
    uncapped = weighted_forget_loss(model, ids, mask, weights)
    assert float(capped_forget_loss(model, ids, mask, weights, cap=1e6)) == pytest.approx(float(uncapped), rel=1e-6)
    assert float(capped_forget_loss(model, ids, mask, weights, cap=0.5)) == pytest.approx(0.5, rel=1e-6)  # every NLL is above 0.5 nats


def test_refit_factors_are_the_hooked_change(setup):
    model, tok, dec, forget, _ = setup
    cm = dec.cm
    refit = Refit(cm, {cm.names[1]: torch.tensor([2, 5])}, "write")
    with torch.no_grad():
        for p in refit.params.values():
            p.normal_(0, 0.1)
    ids, mask = document_batches(tok, forget[:8], CONTEXT, 8)[0][0]
    with refit.hooked(), torch.no_grad():
        hooked = model(input_ids=ids, attention_mask=mask).logits
    applied = apply_factors(model, refit.factors())
    try:
        with torch.no_grad():
            edited = model(input_ids=ids, attention_mask=mask).logits
    finally:
        applied.revert()
    torch.testing.assert_close(hooked, edited, atol=1e-5, rtol=1e-5)
    assert set(factor_delta(refit.factors())) == {cm.names[1]}


def test_default_method_exports_an_exact_adapter_through_the_cli(workspace: Workspace, tmp_path):
    out = tmp_path / "edited"
    sets = [a for k, v in {**SMALL, **PER_KIND["vpd-write"]}.items() for a in ("--set", f"{k}={v}")]
    result = invoke(
        "forget", "--model", workspace.model, "--decomposition", workspace.dec, "--dataset", workspace.toxic,
        "--retain", workspace.retain, "--out", out, "--strength", "10", "--json", *sets,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_clean(result)
    m = json.loads((out / "edit.json").read_text())
    assert m["method"] == get_method("vpd").name == "vpd-write"
    assert m["search"]["axis"] == "steps" and all(c["change"] == "rewritten" for c in m["components"])
    base = AutoModelForCausalLM.from_pretrained(workspace.model)
    merged = PeftModel.from_pretrained(base, out / "adapter").merge_and_unload()
    exported = _weights(AutoModelForCausalLM.from_pretrained(out))
    got = _weights(merged)
    assert max((got[k] - exported[k]).abs().max().item() for k in got) <= 1e-6
    card = (out / "README.md").read_text()
    assert "rewritten" in card and "vpd-write" in card


def test_no_edit_error_says_why_nothing_was_kept():
    """Every point over budget → raise the budget; points within it that did not raise the forget loss → change more."""
    from editor.methods.vpd import no_edit_error
    from editor.search import CurvePoint

    over = [CurvePoint(10, 2.0, 2.0, 0.5, False)]
    assert "smallest retain KL measured was 0.5" in str(no_edit_error([0.07], over))
    within = [CurvePoint(10, 1.9, 2.0, 0.01, True)]
    message = str(no_edit_error([0.07], within))
    assert "raised the forget loss" in message and "--set steps=" in message and "Raise the budget" not in message
