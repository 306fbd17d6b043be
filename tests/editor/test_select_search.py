"""The forget pipeline's library pieces: candidate ranking, the causal search, and the weight edit."""

from __future__ import annotations

import math

import pytest
import torch

from decompose.io import load_decomposition
from decompose.stats import ComponentStats
from editor.apply import ComponentRef, apply_delta, removal_delta
from editor.errors import EditorError
from editor.methods.vpd_remove import RemoveSettings
from editor.model_io import load_model
from editor.paths import TRAIN
from editor.relax import forget_token_weights, optimize_removal, prefix_sizes, soft_removal, token_counts
from editor.search import CurvePoint, RetainReference, forget_losses, verify_prefixes
from editor.select import Candidate, rank_candidates, specificity
from lmkit.tokens import document_batches
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


def forget_ce(model, batches) -> float:
    return forget_losses(model, batches, torch.ones(model.config.vocab_size))[1]


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


def test_verify_prefixes_top_k_measures_each_prefix_and_leaves_weights_bit_identical(loaded):
    dec, forget, retain = loaded
    model = dec.cm.model
    before = _snapshot(model)
    cands = _candidates(dec, [(0, 1), (5, 3), (9, 0), (13, 7)])  # four different matrices
    weights = torch.ones(model.config.vocab_size)
    seen: list[CurvePoint] = []
    result = verify_prefixes(dec.cm, cands, [1, 2], forget, retain, weights, None, seen.append)
    assert result.selected == cands[:2]
    assert [p.at for p in result.curve] == [1, 2] and seen == result.curve
    assert _unchanged(model, before)
    assert result.base.forget_ce == pytest.approx(forget_ce(model, forget), rel=1e-6)
    assert result.base.forget_loss == pytest.approx(result.base.forget_ce, rel=1e-6)  # all-ones weights
    assert result.base.retain_kl == 0 and result.final.retain_kl > 0
    # The final numbers are those of the model with both components removed.
    step = apply_delta(dec.cm.targets, removal_delta(dec.cm, [ComponentRef(c.module, c.index) for c in cands[:2]]))
    try:
        assert result.final.forget_ce == pytest.approx(forget_ce(model, forget), rel=1e-6)
        assert result.final.retain_kl == pytest.approx(RetainReference(_unedited_copy(dec, before), retain).mean_kl(model), rel=1e-5)
    finally:
        step.revert()
    assert _unchanged(model, before)


def _unedited_copy(dec, state):
    import copy

    clone = copy.deepcopy(dec.cm.model)
    clone.load_state_dict(state)
    return clone


def test_verify_prefixes_budget_keeps_the_most_forget_damage_within_budget(loaded):
    dec, forget, retain = loaded
    before = _snapshot(dec.cm.model)
    cands = _candidates(dec, [(0, 1), (5, 3), (9, 0)])
    weights = torch.ones(dec.cm.model.config.vocab_size)
    none = verify_prefixes(dec.cm, cands, [1, 2, 3], forget, retain, weights, 1e-12)
    assert none.selected == [] and [p.within_budget for p in none.curve] == [False] * 3
    assert none.final == none.base
    assert _unchanged(dec.cm.model, before)
    # A budget between the measured KLs admits exactly the prefixes below it; the pick maximises forget loss.
    budget = sorted(p.retain_kl for p in none.curve)[1] * 1.0001
    some = verify_prefixes(dec.cm, cands, [1, 2, 3], forget, retain, weights, budget)
    ok = [p for p in some.curve if p.retain_kl <= budget and p.forget_loss > some.base.forget_loss]
    assert [p.within_budget for p in some.curve] == [p.retain_kl <= budget for p in some.curve]
    expected = max(ok, key=lambda p: p.forget_loss).at if ok else 0
    assert len(some.selected) == expected
    assert _unchanged(dec.cm.model, before)


def test_forget_losses_weight_positions_by_their_target_token(loaded):
    dec, forget, _ = loaded
    model = dec.cm.model
    ids, mask = forget[0]
    target = int(ids[0, 3])
    weights = torch.zeros(model.config.vocab_size)
    weights[target] = 2.5  # any positive constant on one token: the mean NLL over the positions predicting it
    weighted, plain = forget_losses(model, [(ids, mask)], weights)
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1], -1)
    nll = -logp.gather(-1, ids[:, 1:, None])[..., 0]
    keep = (mask[:, :-1] * mask[:, 1:]).bool()
    assert weighted == pytest.approx(float(nll[keep & (ids[:, 1:] == target)].mean()), rel=1e-5)
    assert plain == pytest.approx(float(nll[keep].mean()), rel=1e-5)


# --- relaxed removal -----------------------------------------------------------------------------------


def test_prefix_sizes():
    assert prefix_sizes(0, 5) == []
    assert prefix_sizes(1, 5) == [1]
    sizes = prefix_sizes(100, 6)
    assert sizes[0] == 1 and sizes[-1] == 100 and sizes == sorted(set(sizes)) and len(sizes) == 6
    assert prefix_sizes(3, 10) == [1, 2, 3]
    assert prefix_sizes(7, 1) == [7]
    # Never more than `points` sizes: the progress bar of `editor forget` counts on it.
    assert all(len(prefix_sizes(n, p)) <= p for n in range(1, 300) for p in range(1, 15))


def test_forget_token_weights_count_only_markedly_forget_specific_tokens(workspace):
    _, tok = load_model(str(workspace.model))
    w = forget_token_weights(tok, ["zebra zebra zebra the"], ["the cat the dog"], margin=1.0, smoothing=1e-5)
    zebra = set(tok("zebra zebra zebra", add_special_tokens=False)["input_ids"])
    the = tok(" the", add_special_tokens=False)["input_ids"]
    assert all(w[i] > 0 for i in zebra)
    assert all(w[i] == 0 for i in the)  # as frequent on both sides (at most e^margin more)
    assert w.shape == (len(tok),) and (w >= 0).all()
    # Hand-computed: frequency ratio r gives log(r) − margin.
    f = token_counts(tok, ["zebra zebra zebra the"])
    i = next(iter(zebra))
    fr = f[i] / f.sum()
    assert float(w[i]) == pytest.approx(math.log((fr + 1e-5) / 1e-5) - 1.0, rel=1e-4)


def test_soft_removal_at_full_strength_is_the_weight_edit(loaded):
    dec, forget, _ = loaded
    ids, mask = forget[0]
    cands = {dec.cm.names[0]: torch.tensor([1, 4]), dec.cm.names[9]: torch.tensor([0])}
    full = {n: torch.full((len(i),), 60.0) for n, i in cands.items()}  # σ = 1
    with torch.no_grad(), soft_removal(dec.cm, cands, full):
        soft = dec.cm.model(input_ids=ids, attention_mask=mask).logits
    off = {n: torch.full((len(i),), -60.0) for n, i in cands.items()}  # σ = 0
    with torch.no_grad(), soft_removal(dec.cm, cands, off):
        untouched = dec.cm.model(input_ids=ids, attention_mask=mask).logits
    with torch.no_grad():
        original = dec.cm.model(input_ids=ids, attention_mask=mask).logits
    removed = [ComponentRef(n, int(c)) for n, i in cands.items() for c in i]
    step = apply_delta(dec.cm.targets, removal_delta(dec.cm, removed))
    try:
        with torch.no_grad():
            hard = dec.cm.model(input_ids=ids, attention_mask=mask).logits
    finally:
        step.revert()
    torch.testing.assert_close(soft, hard, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(untouched, original, atol=1e-5, rtol=1e-5)
    assert (soft - original).abs().max() > 1e-3


def test_optimize_removal_follows_its_objective_and_leaves_the_model_alone(loaded):
    dec, forget, retain = loaded
    before = _snapshot(dec.cm.model)
    grads = {n: p.requires_grad for n, p in dec.cm.model.named_parameters()}
    cands = {n: torch.arange(dec.cm.C(n)) for n in dec.cm.names[:4]}
    weights = torch.ones(dec.cm.model.config.vocab_size)
    start = torch.sigmoid(torch.tensor(-3.0))
    # Only the forget loss: removals that hurt the forget set grow.
    greedy = optimize_removal(dec.cm, cands, forget, retain, weights, steps=5, lr=RemoveSettings().lr, retain_weight=0.0, sparsity=0.0)
    assert max(float(r.max()) for r in greedy.values()) > start
    # An overwhelming sparsity penalty: every removal shrinks.
    shy = optimize_removal(dec.cm, cands, forget, retain, weights, steps=5, lr=RemoveSettings().lr, retain_weight=0.0, sparsity=1e6)
    assert all(bool((r < start).all()) for r in shy.values())
    assert {n: r.shape for n, r in shy.items()} == {n: i.shape for n, i in cands.items()}
    assert _unchanged(dec.cm.model, before)
    assert {n: p.requires_grad for n, p in dec.cm.model.named_parameters()} == grads


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
