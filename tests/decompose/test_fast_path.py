"""The optimised training path (fused autograd nodes, grouped CI functions, ...) against the plain-autograd
reference: the same losses and the same gradients, to 1e-5 in float32, on tiny models."""

from __future__ import annotations

import pytest
import torch

from decompose.component_model import ComponentModel, ModuleMask
from decompose.config import DecomposeConfig
from decompose.fused import masked_components
from decompose.targets import default_patterns, resolve_targets
from decompose.train import Decomposer
from tests.fixtures import VOCAB, tiny_input, tiny_model

TOL = dict(atol=1e-5, rtol=1e-5)


def _close(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    assert a.shape == b.shape, what
    scale = max(1.0, b.abs().max().item())
    assert torch.allclose(a, b, atol=1e-5 * scale, rtol=1e-5), (what, (a - b).abs().max().item(), scale)


def _reference(x, out, m, md, V, U, bias, routed):
    """The formula with plain autograd and torch.where over every row."""
    a = x @ V
    if md is None:
        y = (a * m) @ U
    else:
        y = (a * (m - md[:, None])) @ U + md[:, None] * (out if bias is None else out - bias)
    if bias is not None:
        y = y + bias
    return y if routed is None else torch.where(routed[:, None], y, out)


@pytest.mark.parametrize("with_delta", [True, False])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("routing", ["some", "none", "all", "empty"])
def test_masked_components_node_matches_autograd(with_delta, with_bias, routing):
    gen = torch.Generator().manual_seed(0)
    N, d_in, d_out, C = 13, 5, 7, 6
    leaves = {
        "x": torch.randn(N, d_in, generator=gen),
        "out": torch.randn(N, d_out, generator=gen),
        "m": torch.rand(N, C, generator=gen),
        "md": torch.rand(N, generator=gen),
        "V": torch.randn(d_in, C, generator=gen),
        "U": torch.randn(C, d_out, generator=gen),
    }
    bias = torch.randn(d_out, generator=gen) if with_bias else None
    routed = {"some": torch.rand(N, generator=gen) < 0.5, "none": None, "all": torch.ones(N, dtype=torch.bool), "empty": torch.zeros(N, dtype=torch.bool)}[
        routing
    ]
    idx = None if routed is None else routed.nonzero().squeeze(1)
    grad_out = torch.randn(N, d_out, generator=gen)
    results = []
    for fused in (True, False):
        t = {k: v.clone().requires_grad_() for k, v in leaves.items()}
        md = t["md"] if with_delta else None
        args = (t["x"], t["out"], t["m"], md, t["V"], t["U"], bias)
        y = masked_components(*args, idx) if fused else _reference(*args, routed)
        y.backward(grad_out)
        results.append((y.detach(), {k: v.grad for k, v in t.items()}))
    (y_f, g_f), (y_r, g_r) = results
    _close(y_f, y_r, "output")
    for k in leaves:
        if g_r[k] is None:  # no Δ path: m_Δ unused
            assert g_f[k] is None or not g_f[k].any(), k
        else:
            _close(g_f[k], g_r[k], k)


def _cm(arch: str) -> ComponentModel:
    model = tiny_model(arch)
    cm = ComponentModel(model, resolve_targets(model, dict.fromkeys(default_patterns(model), 6)))
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for comp in cm.components.values():
            comp.V.add_(0.3 * torch.randn(comp.V.shape, generator=gen))
    return cm


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])  # no bias, q/k/v biases, Conv1D layout
def test_hooked_forward_and_grads_match_reference(arch):
    cm = _cm(arch)
    ids = tiny_input(VOCAB, 3, 5)
    lead = cm.lead(ids)
    gen = torch.Generator().manual_seed(1)
    base = {n: torch.rand(*lead, cm.C(n), generator=gen) for n in cm.names}
    deltas = {n: torch.rand(lead, generator=gen) for n in cm.names}
    routed = {n: torch.rand(lead, generator=gen) < 0.6 for n in cm.names}
    shared = {n: torch.rand(1, 1, cm.C(n), generator=gen) for n in cm.names}  # a broadcast mask
    grads = []
    for fused in (True, False):
        cm.fused = fused
        masks = {n: b.clone().requires_grad_() for n, b in base.items()}
        dm = {n: d.clone().requires_grad_() for n, d in deltas.items()}
        sh = {n: s.clone().requires_grad_() for n, s in shared.items()}
        specs = {}
        for i, n in enumerate(cm.names):
            mask = masks[n] if i % 2 else sh[n] * masks[n].detach()
            specs[n] = ModuleMask(mask, dm[n] if i % 3 else None, routed[n] if i % 4 else None)
        out = cm.run(ids, specs)
        loss = (out.float().sin() * torch.linspace(-1, 1, out.shape[-1])).sum()
        params = list(cm.components.parameters())
        leaves = params + list(masks.values()) + list(dm.values()) + list(sh.values())
        g = torch.autograd.grad(loss, leaves, allow_unused=True)
        grads.append((out.detach(), [torch.zeros_like(p) if x is None else x for p, x in zip(leaves, g)]))
    cm.fused = True
    (o_f, g_f), (o_r, g_r) = grads
    _close(o_f, o_r, "logits")
    for i, (a, b) in enumerate(zip(g_f, g_r)):
        _close(a, b, f"grad {i}")


LOSSES = [
    {"kind": "faithfulness", "coeff": 1e3, "warmup_steps": 0},
    {"kind": "importance_minimality", "coeff": 1e-2, "beta": 0.5},
    {"kind": "stochastic_recon", "subset": True},
    {"kind": "pgd_recon", "n_steps": 1, "step_size": 1.0, "shared": True, "subset": True},
]


def _decomposer(arch: str, losses, fast: bool) -> Decomposer:
    cfg = DecomposeConfig(default_C=6, batch_size=2, seq_len=8, steps=10, losses=losses, ci_fn={"kind": "shared_mlp", "hidden": 8})
    stream = torch.randint(0, VOCAB, (300,), generator=torch.Generator().manual_seed(0))
    dec = Decomposer(tiny_model(arch), cfg, stream)
    dec.set_fast(fast)
    return dec


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
@pytest.mark.parametrize(
    "losses",
    [LOSSES, LOSSES[:2] + [{"kind": "stochastic_recon", "subset": False}, {"kind": "persistent_pgd_recon", "n_warmup_steps": 1}]],
    ids=["bench", "persistent"],
)
def test_training_losses_and_gradients_match_reference(arch, losses):
    decs = [_decomposer(arch, losses, fast) for fast in (True, False)]
    for step in range(3):  # later steps start from trained (different) parameters and adversary states
        ids = decs[0].next_batch()
        assert torch.equal(ids, decs[1].next_batch())
        results = []
        for dec in decs:
            terms, total, ctx = dec.losses(ids, step)
            dec.opt.zero_grad(set_to_none=True)
            total.backward()
            results.append((terms, total, [p.grad.clone() for p in dec.params]))
            dec.opt.step()
            for _, loss in dec.recon:
                loss.after_backward(ctx)
        (t_f, tot_f, g_f), (t_r, tot_r, g_r) = results
        assert t_f.keys() == t_r.keys()
        for k in t_f:
            _close(t_f[k].detach(), t_r[k].detach(), f"step {step} {k}")
        _close(tot_f.detach(), tot_r.detach(), f"step {step} total")
        for i, (a, b) in enumerate(zip(g_f, g_r)):
            _close(a, b, f"step {step} grad {i}")
        decs[1].load_state_dict(decs[0].state_dict())  # equal states again (parameters, moments, adversaries, generators)


@pytest.mark.parametrize("p", [2.0, 0.9, 0.3])
def test_ci_activations_node_matches_autograd(p):
    from decompose.fused import ci_activations
    from decompose.losses.importance_minimality import importance_minimality_from_sums, importance_minimality_loss
    from decompose.sigmoids import lower_leaky_hard_sigmoid, upper_leaky_hard_sigmoid

    gen = torch.Generator().manual_seed(0)
    z0 = 1.5 * torch.randn(4, 9, 6, generator=gen)
    z0[0, 0] = torch.tensor([0.0, 1.0, -1e-3, 1 + 1e-3, 0.5, 3.0])  # the kinks exactly
    grad_g = torch.randn(z0.shape, generator=gen)  # both signs, so the gated leak below 0 is exercised
    alpha, eps, beta = 0.01, 1e-12, 0.7
    results = []
    for fused in (True, False):
        z = z0.clone().requires_grad_()
        if fused:
            g, s = ci_activations(z, p, alpha, eps)
            loss = importance_minimality_from_sums([s], [36], beta, world_size=2)
        else:
            g = lower_leaky_hard_sigmoid(z, alpha)
            loss = importance_minimality_loss([upper_leaky_hard_sigmoid(z, alpha)], p, beta, eps, world_size=2)
        (loss + (g * grad_g).sum()).backward()
        results.append((g.detach(), loss.detach(), z.grad))
    for a, b, what in zip(results[0], results[1], ["g", "loss", "grad"]):
        _close(a, b, what)


@pytest.mark.slow  # torch.compile takes ~20 s on a CPU
def test_compiled_ci_chain_matches_eager():
    from decompose.fused import ci_activations

    gen = torch.Generator().manual_seed(0)
    z0 = 1.5 * torch.randn(2, 8, 6, generator=gen)
    grad_g = torch.randn(z0.shape, generator=gen)
    grad_s = torch.randn(6, generator=gen)
    results = []
    for compiled in (True, False):
        z = z0.clone().requires_grad_()
        g, s = ci_activations(z, 0.7, 0.01, 1e-12, compiled=compiled)
        ((g * grad_g).sum() + (s * grad_s).sum()).backward()
        results.append((g.detach(), s.detach(), z.grad))
    for a, b, what in zip(results[0], results[1], ["g", "s", "grad"]):
        _close(a, b, what)
