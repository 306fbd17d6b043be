"""The forget pipeline's library pieces: candidate ranking, the causal search, and the weight edit."""

from __future__ import annotations

import math

import pytest
import torch

from decompose.data import document_batches
from decompose.io import load_decomposition
from decompose.stats import ComponentStats
from editor.apply import RemovedComponent, apply_delta, component_delta
from editor.errors import EditorError
from editor.model_io import load_model
from editor.paths import TRAIN
from editor.search import CurvePoint, causal_search, forget_ce
from editor.select import Candidate, rank_candidates, specificity
from tests.editor.clitools import CONTEXT, jsonl_texts

# --- rank_candidates -----------------------------------------------------------------------------------


def _stats(mean_ci: dict[str, list[float]], density: dict[str, list[float]]) -> ComponentStats:
    return ComponentStats({k: torch.tensor(v) for k, v in mean_ci.items()}, {k: torch.tensor(v) for k, v in density.items()}, 100)


FORGET = _stats({"a": [0.5, 0.2, 0.3], "b": [0.1, 0.6, 0.05]}, {"a": [0.5, 0.4, 0.0005], "b": [0.3, 0.9, 0.1]})
RETAIN = _stats({"a": [0.1, 0.2, 0.0], "b": [0.3, 0.3, 0.0]}, {"a": [0.1, 0.2, 0.0], "b": [0.6, 0.5, 0.0]})


def test_rank_candidates_order_and_exclusions():
    ranked = rank_candidates(FORGET, RETAIN, min_forget_density=1e-3)
    # a1 (μ_F = μ_R), b0 (μ_F < μ_R) and a2 (fires on 0.05% of forget tokens) are excluded.
    assert [(c.module, c.index) for c in ranked] == [("a", 0), ("b", 2), ("b", 1)]
    a0 = ranked[0]
    assert a0.score == pytest.approx(0.4 * math.log(0.5001 / 0.1001), rel=1e-5)
    assert a0.score == specificity(a0.forget_mean_ci, a0.retain_mean_ci, 1e-4)
    assert (a0.forget_mean_ci, a0.retain_mean_ci) == pytest.approx((0.5, 0.1))
    assert (a0.forget_density, a0.retain_density) == pytest.approx((0.5, 0.1))
    assert ranked[1].score == pytest.approx(0.05 * math.log(0.0501 / 0.0001), rel=1e-5)
    assert all(c.score > 0 for c in ranked)


def test_rank_candidates_density_floor_is_a_parameter():
    ranked = rank_candidates(FORGET, RETAIN, min_forget_density=0.0)
    # a2 is used on the forget set only: the most specific of all once its density may be small.
    assert [(c.module, c.index) for c in ranked] == [("a", 2), ("a", 0), ("b", 2), ("b", 1)]
    assert rank_candidates(FORGET, RETAIN, min_forget_density=0.95) == []


def test_rank_candidates_ties_are_deterministic():
    same = _stats({"b": [0.4], "a": [0.4]}, {"b": [0.5], "a": [0.5]})
    zero = _stats({"b": [0.1], "a": [0.1]}, {"b": [0.5], "a": [0.5]})
    assert [c.module for c in rank_candidates(same, zero)] == ["a", "b"]


# --- causal search and apply ---------------------------------------------------------------------------


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _unchanged(model, before: dict[str, torch.Tensor]) -> bool:
    now = model.state_dict()
    return now.keys() == before.keys() and all(torch.equal(now[k], v) for k, v in before.items())


@pytest.fixture(scope="module")
def loaded(workspace):
    lm, tok = load_model(str(workspace.model))
    dec = load_decomposition(lm, workspace.dec)
    forget, _ = document_batches(tok, jsonl_texts(TRAIN["toxic"], 16), CONTEXT, 8)
    retain, _ = document_batches(tok, jsonl_texts(TRAIN["benign"], 16), CONTEXT, 8)
    return dec, forget, retain


def _candidates(dec, picks: list[tuple[int, int]]) -> list[Candidate]:
    names = dec.cm.names
    return [Candidate(names[m], c, 1.0 / (i + 1), 0.5, 0.1, 0.5, 0.1) for i, (m, c) in enumerate(picks)]


def test_causal_search_top_k_accepts_k_and_leaves_weights_bit_identical(loaded):
    dec, forget, retain = loaded
    model = dec.cm.model
    before = _snapshot(model)
    cands = _candidates(dec, [(0, 1), (5, 3), (9, 0), (13, 7)])  # four different matrices
    tried: list[CurvePoint] = []
    result = causal_search(dec.cm, cands, forget, retain, None, 2, 400, on_try=tried.append)
    assert result.selected == cands[:2]
    assert [(p.tried, p.removed, p.accepted) for p in result.curve] == [(1, 1, True), (2, 2, True)]
    assert tried == result.curve
    assert _unchanged(model, before)
    assert result.base_forget_ce == pytest.approx(forget_ce(model, forget), rel=1e-6)
    assert result.retain_kl > 0
    # The final numbers are those of the model with both components removed.
    step = apply_delta(dec.cm.targets, component_delta(dec.cm, [RemovedComponent(c.module, c.index) for c in cands[:2]]))
    try:
        assert result.forget_ce == pytest.approx(forget_ce(model, forget), rel=1e-6)
    finally:
        step.revert()
    assert _unchanged(model, before)


def test_causal_search_budget_rejects_all_and_leaves_weights_bit_identical(loaded):
    dec, forget, retain = loaded
    before = _snapshot(dec.cm.model)
    cands = _candidates(dec, [(0, 1), (5, 3), (9, 0)])
    result = causal_search(dec.cm, cands, forget, retain, 1e-12, None, 400)
    assert result.selected == [] and [p.accepted for p in result.curve] == [False] * 3
    assert all(p.retain_kl > 1e-12 for p in result.curve)
    assert result.forget_ce == result.base_forget_ce and result.retain_kl == 0.0
    assert _unchanged(dec.cm.model, before)
    # max_tries bounds the candidates tried.
    assert len(causal_search(dec.cm, cands, forget, retain, 1e-12, None, 2).curve) == 2
    assert _unchanged(dec.cm.model, before)


def test_apply_delta_with_a_non_finite_result_changes_nothing(loaded):
    dec, _, _ = loaded
    before = _snapshot(dec.cm.model)
    first, second = dec.cm.names[0], dec.cm.names[1]
    finite = torch.ones(dec.cm.targets[first].d_out, dec.cm.targets[first].d_in)
    bad = torch.zeros(dec.cm.targets[second].d_out, dec.cm.targets[second].d_in)
    bad[0, 0] = float("nan")
    with pytest.raises(EditorError, match=f"edit of {second} gives non-finite weights"):
        apply_delta(dec.cm.targets, {first: finite, second: bad})
    bad[0, 0] = float("inf")
    with pytest.raises(EditorError, match="non-finite"):
        apply_delta(dec.cm.targets, {first: finite, second: bad})
    with pytest.raises(EditorError, match="does not have: no.such.module"):
        apply_delta(dec.cm.targets, {first: finite, "no.such.module": finite})
    assert _unchanged(dec.cm.model, before)
    # A finite delta is applied, and reverted bit for bit.
    applied = apply_delta(dec.cm.targets, {first: finite})
    assert not _unchanged(dec.cm.model, before)
    applied.revert()
    assert _unchanged(dec.cm.model, before)
