"""Sign and Adam ascent on mask sources: hand-computed steps, clamping, ascent, exact resume."""

import math

import pytest
import torch

from decompose.adversary import AdamAscent, SignAscent, init_sources


def _src(*vals):
    return {"a": torch.tensor([list(vals)])}


def test_sign_ascent_step_and_lr_override():
    s = _src(0.5, 0.5, 0.5)
    g = _src(2.0, -0.5, 0.0)
    opt = SignAscent(step_size=0.3)
    opt.step(s, g)  # 0.5 + 0.3·sign(g) = [0.8, 0.2, 0.5]
    assert torch.allclose(s["a"], torch.tensor([[0.8, 0.2, 0.5]]))
    opt.step(s, g, lr=0.6)  # [1.4, −0.4, 0.5] clamped to [1, 0, 0.5]
    assert torch.allclose(s["a"], torch.tensor([[1.0, 0.0, 0.5]]))
    assert opt.state_dict() == {"n_steps": 2}


def test_adam_first_and_second_step_by_hand():
    s = _src(0.5, 0.5, 0.5)
    opt = AdamAscent(lr=0.1)  # β1 .5, β2 .99, eps 1e-8
    opt.step(s, _src(2.0, -0.5, 0.0))
    # t=1: m = .5·g, v = .01·g²; m̂ = m/.5 = g, v̂ = v/.01 = g²; step = .1·g/(|g|+eps) = [.1, −.1, 0]
    assert torch.allclose(s["a"], torch.tensor([[0.6, 0.4, 0.5]]), atol=1e-6)
    opt.step(s, _src(1.0, 1.0, 1.0))
    # t=2: m = .5·m + .5·1 = [1, .375, .5]; v = .99·v + .01 = [.0496, .012475, .01];
    # m̂ = m/(1−.25), v̂ = v/(1−.9801); step = .1·m̂/√v̂
    m = [1.0, 0.375, 0.5]
    v = [0.0496, 0.012475, 0.01]
    step = [0.1 * (mi / 0.75) / (math.sqrt(vi / 0.0199) + 1e-8) for mi, vi in zip(m, v)]
    expected = torch.tensor([[0.6 + step[0], 0.4 + step[1], 0.5 + step[2]]])
    assert torch.allclose(s["a"], expected, atol=1e-6)


def test_adam_clamps_to_unit_interval():
    s = _src(0.95, 0.02)
    AdamAscent(lr=0.1).step(s, _src(1.0, -1.0))  # ±0.1 steps: 1.05 → 1, −0.08 → 0
    assert torch.equal(s["a"], torch.tensor([[1.0, 0.0]]))


def _objective(s):
    # Maximised at s = 0.7 everywhere.
    return -((s - 0.7) ** 2).sum()


def test_adam_increases_a_quadratic():
    s = {"a": torch.tensor([[0.1, 0.9, 0.3]])}
    opt = AdamAscent(lr=0.05)
    values = []
    for _ in range(40):
        x = s["a"].clone().requires_grad_(True)
        obj = _objective(x)
        values.append(obj.item())
        (grad,) = torch.autograd.grad(obj, x)
        opt.step(s, {"a": grad})
    assert values[1] > values[0]
    assert _objective(s["a"]).item() > -0.01


def test_state_dict_round_trip_resumes_exactly():
    gen = torch.Generator().manual_seed(0)
    grads = [{"a": torch.randn(2, 4, generator=gen), "b": torch.randn(3, generator=gen)} for _ in range(6)]
    s1 = init_sources({"a": (2, 4), "b": (3,)}, "random", torch.Generator().manual_seed(1))
    opt1 = AdamAscent(lr=0.05)
    for g in grads[:3]:
        opt1.step(s1, g)
    state = opt1.state_dict()
    s2 = {k: v.clone() for k, v in s1.items()}
    for g in grads[3:]:
        opt1.step(s1, g)
    opt2 = AdamAscent(lr=0.05)
    opt2.load_state_dict(state)
    assert state["n_steps"] == 3  # a copy: later steps of opt1 did not touch it
    for g in grads[3:]:
        opt2.step(s2, g)
    for k in s1:
        assert torch.equal(s1[k], s2[k])


def test_mismatched_keys_rejected():
    with pytest.raises(KeyError):
        AdamAscent(lr=0.1).step(_src(0.5), {"b": torch.tensor([[1.0]])})


def test_init_sources():
    shapes = {"x": (1, 1, 4), "y": (2, 3)}
    r1 = init_sources(shapes, "random", torch.Generator().manual_seed(3))
    r2 = init_sources(shapes, "random", torch.Generator().manual_seed(3))
    assert all(torch.equal(r1[k], r2[k]) and r1[k].shape == shapes[k] for k in shapes)
    assert all(((v >= 0) & (v < 1)).all() and not v.requires_grad for v in r1.values())
    assert torch.equal(init_sources(shapes, "ones", None)["y"], torch.ones(2, 3))
    assert torch.equal(init_sources(shapes, "zeros", None)["x"], torch.zeros(1, 1, 4))
