"""CI functions: output shapes per matrix, causality of the global transformer, and a short training run with it."""

from __future__ import annotations

import math

import pytest
import torch

from decompose.ci_fns.global_transformer import GlobalTransformerCI, GlobalTransformerConfig
from decompose.ci_fns.shared_mlp import SharedMlpCI, SharedMlpConfig
from decompose.config import DecomposeConfig
from decompose.train import Decomposer
from tests.fixtures import VOCAB, tiny_model

# Names with dots, as real module names have; d_in and C differ per matrix.
SHAPES = {"model.layers.0.q": (6, 4), "model.layers.0.down": (10, 3), "a": (5, 7)}
SMALL_GT = dict(d_model=16, n_blocks=1, n_heads=2, d_mlp=32)


def _inputs(lead: tuple[int, ...], seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {n: torch.randn(*lead, d_in, generator=gen) for n, (d_in, _) in SHAPES.items()}


def _gt(causal: bool) -> GlobalTransformerCI:
    torch.manual_seed(0)
    return GlobalTransformerConfig(**SMALL_GT, causal=causal).build(SHAPES)


@pytest.mark.parametrize("lead", [(2, 5), (4,)])
def test_shared_mlp_shapes(lead):
    torch.manual_seed(0)
    ci = SharedMlpConfig(hidden=8).build(SHAPES)
    assert isinstance(ci, SharedMlpCI)
    out = ci(_inputs(lead))
    assert list(out) == list(SHAPES)
    for n, (_, C) in SHAPES.items():
        assert out[n].shape == (*lead, C)
        assert torch.isfinite(out[n]).all()
    # One MLP per matrix: d_in·h + h + h·C + C parameters each.
    expected = sum(d * 8 + 8 + 8 * C + C for d, C in SHAPES.values())
    assert sum(p.numel() for p in ci.parameters()) == expected


def test_shared_mlp_reads_only_its_own_matrix():
    torch.manual_seed(0)
    ci = SharedMlpConfig(hidden=8).build(SHAPES)
    x = _inputs((2, 3))
    y = dict(x, a=x["a"] + 1.0)
    before, after = ci(x), ci(y)
    assert not torch.allclose(before["a"], after["a"])
    assert torch.equal(before["model.layers.0.q"], after["model.layers.0.q"])


def test_global_transformer_shapes():
    ci = _gt(causal=False)
    out = ci(_inputs((2, 5)))
    assert set(out) == set(SHAPES)
    for n, (_, C) in SHAPES.items():
        assert out[n].shape == (2, 5, C)
        assert torch.isfinite(out[n]).all()
    # Inputs are concatenated in sorted name order: 5 + 10 + 6 = 21 features in, ΣC = 14 out.
    assert ci.names == sorted(SHAPES)
    assert ci.embed.in_features == 21 and ci.head.out_features == 14
    with pytest.raises(ValueError, match="divisible"):
        GlobalTransformerConfig(d_model=16, n_heads=3).build(SHAPES)


def test_global_transformer_is_permutation_invariant_in_dict_order():
    ci = _gt(causal=False)
    x = _inputs((1, 4))
    reordered = {n: x[n] for n in reversed(list(x))}
    a, b = ci(x), ci(reordered)
    assert all(torch.equal(a[n], b[n]) for n in SHAPES)


@pytest.mark.parametrize("causal", [True, False])
def test_global_transformer_causality(causal):
    ci = _gt(causal)
    T, t = 6, 2
    x = _inputs((2, T), seed=1)
    later = _inputs((2, T), seed=2)
    # Change every matrix's input at positions after t.
    y = {n: torch.cat([x[n][:, : t + 1], later[n][:, t + 1 :]], dim=1) for n in SHAPES}
    with torch.no_grad():
        before, after = ci(x), ci(y)
    for n in SHAPES:
        early_same = torch.allclose(before[n][:, : t + 1], after[n][:, : t + 1], atol=1e-6)
        if causal:
            assert early_same, n  # positions ≤ t see only positions ≤ t
        else:
            assert not early_same, n  # bidirectional: earlier CIs depend on later tokens
            assert (before[n][:, : t + 1] - after[n][:, : t + 1]).abs().max() > 1e-4
        assert not torch.allclose(before[n][:, t + 1 :], after[n][:, t + 1 :])


def test_decomposer_with_global_transformer_trains():
    model = tiny_model("llama")
    cfg = DecomposeConfig(
        default_C=8,
        batch_size=2,
        seq_len=8,
        steps=3,
        ci_fn={"kind": "global_transformer", **SMALL_GT},
        losses=[
            {"kind": "faithfulness", "warmup_steps": 1},
            {"kind": "importance_minimality"},
            {"kind": "stochastic_recon"},
            {"kind": "pgd_recon"},
        ],
        eval={"every": 100, "batches": 1},
    )
    stream = torch.randint(0, VOCAB, (200,), generator=torch.Generator().manual_seed(0))
    dec = Decomposer(model, cfg, stream)
    assert isinstance(dec.ci_fn, GlobalTransformerCI)
    assert set(dec.ci_fn.names) == set(dec.cm.names) and len(dec.cm.names) == 14  # 7 matrices × 2 layers
    ci_before = {k: v.clone() for k, v in dec.ci_fn.state_dict().items()}
    history = []
    while not dec.done:
        history.append(dec.train_step())
    assert dec.step == 1 + 3  # the faithfulness warmup step, then 3 main steps
    assert list(history[0]) == ["faithfulness"]
    for metrics in history[1:]:
        for key in ("faithfulness", "importance_minimality", "stochastic_recon", "pgd_recon", "total", "lr", "l0"):
            assert math.isfinite(metrics[key]), (key, metrics)
        assert metrics["stochastic_recon"] >= 0 and metrics["pgd_recon"] >= 0
    # The CI transformer itself was trained (the recon and minimality terms reach it).
    after = dec.ci_fn.state_dict()
    assert any(not torch.equal(ci_before[k], after[k]) for k in ci_before)
    assert all(torch.isfinite(v).all() for v in after.values())
