"""Stochastic and adversarial masks, Δ-masks and uniform-k routing."""

import pytest
import torch

from decompose.masks import adversarial_masks, delta_masks, stochastic_masks, uniform_k_routing

G = [[0.0, 0.5, 1.0], [0.25, 0.5, 0.0]]


def test_stochastic_mask_range_values_and_grad():
    g = torch.tensor(G, requires_grad=True)
    m = stochastic_masks(g, torch.Generator().manual_seed(0))
    r = torch.rand((2, 3), generator=torch.Generator().manual_seed(0))  # the same draw
    assert torch.allclose(m, g.detach() + (1 - g.detach()) * r)
    assert (m >= g).all() and (m <= 1).all()
    # g = 1 pins the mask at 1; g = 0 leaves the raw r.
    assert m[0, 2].item() == 1.0 and m[0, 0].item() == pytest.approx(r[0, 0].item())
    m.sum().backward()
    assert torch.allclose(g.grad, 1 - r)  # ∂m/∂g = 1 − r


def test_delta_masks_uniform_and_reproducible():
    a = delta_masks((2, 3), torch.Generator().manual_seed(1))
    b = delta_masks((2, 3), torch.Generator().manual_seed(1))
    assert a.shape == (2, 3) and torch.equal(a, b)
    assert ((a >= 0) & (a < 1)).all()


def test_uniform_k_routing_counts():
    M, N = 4, 4000
    routed = uniform_k_routing(N, M, torch.Generator().manual_seed(0))
    assert routed.dtype == torch.bool and routed.shape == (M, N)
    k = routed.sum(0)
    assert ((k >= 1) & (k <= M)).all()
    counts = torch.bincount(k, minlength=M + 1)[1:]
    assert (counts > 800).all()  # each k ∈ {1..4} expected 1000 times
    # P(module routed) = E[k]/M = 2.5/4 = 0.625 for every module.
    freq = routed.float().mean(1)
    assert ((freq > 0.59) & (freq < 0.66)).all()


def test_uniform_k_routing_single_module_always_routed():
    assert uniform_k_routing(5, 1, torch.Generator().manual_seed(0)).all()


def test_adversarial_masks_shared_source():
    g = torch.tensor(G, requires_grad=True)
    s = torch.tensor([[0.2, 0.4, 0.6, 0.9]], requires_grad=True)  # (1, C+1), broadcast over 2 tokens
    m, m_delta = adversarial_masks(g, s)
    # m = g + (1−g)·s: row 0 [0 + .2, .5 + .5·.4, 1] = [.2, .7, 1]; row 1 [.25 + .75·.2, .7, 0 + .6] = [.4, .7, .6]
    assert torch.allclose(m, torch.tensor([[0.2, 0.7, 1.0], [0.4, 0.7, 0.6]]))
    assert torch.allclose(m_delta, torch.tensor([0.9, 0.9]))
    (m.sum() + m_delta.sum()).backward()
    # ∂/∂s_c = Σ_tokens (1 − g_c) = [1 + .75, .5 + .5, 0 + 1]; ∂/∂s_C = 2 tokens.
    assert torch.allclose(s.grad, torch.tensor([[1.75, 1.0, 1.0, 2.0]]))
    # ∂m/∂g = 1 − s_c
    assert torch.allclose(g.grad, torch.tensor([[0.8, 0.6, 0.4], [0.8, 0.6, 0.4]]))


def test_adversarial_masks_per_token_source_and_errors():
    g = torch.tensor(G)
    s = torch.tensor([[1.0, 0.0, 0.0, 0.3], [0.0, 1.0, 1.0, 0.7]])
    m, m_delta = adversarial_masks(g, s)
    assert torch.allclose(m, torch.tensor([[1.0, 0.5, 1.0], [0.25, 1.0, 1.0]]))
    assert torch.allclose(m_delta, torch.tensor([0.3, 0.7]))
    with pytest.raises(ValueError):
        adversarial_masks(g, torch.zeros(1, 3))  # last dim must be C+1
    with pytest.raises(ValueError):
        adversarial_masks(g, torch.zeros(3, 2, 4))  # would broadcast beyond g's leading dims
