"""Relearning curves and weight quantization work on copies and do what they say."""

from __future__ import annotations

import pytest
import torch

from editor.paths import HELDOUT
from evals.robustness import quantize_weights, relearn_curve, round_to_nearest
from lmkit.texts import load_texts
from tests.fixtures import tiny_model


def test_round_to_nearest_by_hand():
    w = torch.tensor([[1.0, -0.5, 0.26, 0.0], [0.0, 0.0, 0.0, 0.0]])
    # 2 bits: qmax 1, scale = 1.0 for row 0 → values round to -1, 0, 1; an all-zero row stays zero
    assert torch.equal(round_to_nearest(w, 2), torch.tensor([[1.0, -0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]))
    # 3 bits: qmax 3, scale 1/3 → 0.26 → 1/3, -0.5 → -2/3 (round half to even of -1.5 is -2)
    q = round_to_nearest(w, 3)
    assert q[0].tolist() == pytest.approx([1.0, -2 / 3, 1 / 3, 0.0])


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_quantize_copies_and_rounds_per_channel(arch):
    model = tiny_model(arch)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    q = quantize_weights(model, 4)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed in the original"
    changed = 0
    for _name, module in q.named_modules():
        w = getattr(module, "weight", None)
        if w is None or w.dim() != 2 or type(module).__name__ not in {"Linear", "Conv1D"}:
            continue
        rows = w if type(module).__name__ == "Linear" else w.t()  # per output channel
        for row in rows[:4]:
            assert row.unique().numel() <= 15  # 4 bits symmetric: at most 2*7+1 levels
        changed += 1
    assert changed > 0
    x = torch.randint(0, 97, (1, 6))
    assert torch.allclose(quantize_weights(model, 16)(x).logits, model(x).logits, atol=1e-3)


def test_relearn_curve_lowers_attacked_nll(tiny):
    model, tok = tiny
    texts = load_texts(HELDOUT["toxic"]).texts[:16]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    curve = relearn_curve(model, tok, texts, texts, steps=6, lr=3e-3, batch_size=8, eval_every=3, retain_texts=texts[:4])
    assert [p["step"] for p in curve] == [0, 3, 6]
    assert curve[-1]["nll"] < curve[0]["nll"] - 0.05, curve
    assert all("retain_nll" in p for p in curve)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed in the original"
    assert not any(p.requires_grad and p.grad is not None for p in model.parameters())
    # the last point is kept even when steps is not a multiple of eval_every
    assert [p["step"] for p in relearn_curve(model, tok, texts, texts[:2], steps=4, lr=1e-3, batch_size=8, eval_every=3)] == [0, 3, 4]
