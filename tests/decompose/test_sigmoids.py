"""Forward values and every backward branch of the two leaky hard sigmoids."""

import torch

from decompose.sigmoids import lower_leaky_hard_sigmoid, upper_leaky_hard_sigmoid

X = [[-0.5, 0.0, 0.3], [1.0, 1.5, 2.0]]


def _grad(fn, x_vals, w_vals, **kw):
    # d/dx Σ w·f(x): the backward of f fed with upstream gradient w.
    x = torch.tensor(x_vals, requires_grad=True)
    (fn(x, **kw) * torch.tensor(w_vals)).sum().backward()
    return x.grad


def test_lower_forward_is_clamp():
    y = lower_leaky_hard_sigmoid(torch.tensor(X))
    assert torch.equal(y, torch.tensor([[0.0, 0.0, 0.3], [1.0, 1.0, 1.0]]))


def test_lower_backward_branches():
    # x=-0.5, w=-2: below 0 and grad<0 → 0.01·(−2) = −0.02;  x=0, w=3: x≤0 but grad>0 → 0;
    # x=0.3, w=4 → 4;  x=1.0, w=5 (0<x≤1) → 5;  x=1.5, w=−6 → 0;  x=2.0, w=7 → 0.
    g = _grad(lower_leaky_hard_sigmoid, X, [[-2.0, 3.0, 4.0], [5.0, -6.0, 7.0]])
    assert torch.allclose(g, torch.tensor([[-0.02, 0.0, 4.0], [5.0, 0.0, 0.0]]))


def test_lower_backward_gate_flipped_and_alpha():
    # Flip the signs below 0: x=-0.5, w=+2 → 0 (descent would lower x); x=0, w=−3 → α·(−3) = −0.3 with α=0.1.
    g = _grad(lower_leaky_hard_sigmoid, X, [[2.0, -3.0, 1.0], [1.0, 1.0, 1.0]], alpha=0.1)
    assert torch.allclose(g, torch.tensor([[0.0, -0.3, 1.0], [1.0, 0.0, 0.0]]))


def test_upper_forward():
    # 1.5 → 1 + 0.01·0.5 = 1.005;  2.0 → 1 + 0.01·1 = 1.01.
    y = upper_leaky_hard_sigmoid(torch.tensor(X))
    assert torch.allclose(y, torch.tensor([[0.0, 0.0, 0.3], [1.0, 1.005, 1.01]]))


def test_upper_backward_branches():
    # Slopes 0 below 0, 1 on [0, 1] (x=0 and x=1 included), α above 1; w = 2 everywhere:
    # [[0, 2, 2], [2, 0.02, 0.02]].
    g = _grad(upper_leaky_hard_sigmoid, X, [[2.0] * 3, [2.0] * 3])
    assert torch.allclose(g, torch.tensor([[0.0, 2.0, 2.0], [2.0, 0.02, 0.02]]))
