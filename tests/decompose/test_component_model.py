"""The hooked ComponentModel against a hand-computed reference, and its hook / cache / gradient hygiene."""

from __future__ import annotations

import pytest
import torch

from decompose.component_model import ComponentModel, ModuleMask
from decompose.targets import default_patterns, resolve_targets
from tests.fixtures import VOCAB, tiny_input, tiny_model

C = 6
BATCH, SEQ = 3, 5


def _cm(arch: str = "llama", perturb: bool = True) -> ComponentModel:
    model = tiny_model(arch)
    cm = ComponentModel(model, resolve_targets(model, dict.fromkeys(default_patterns(model), C)))
    if perturb:  # components that do not sum to W, so the Δ path is non-trivial
        gen = torch.Generator().manual_seed(7)
        with torch.no_grad():
            for comp in cm.components.values():
                comp.V.add_(0.3 * torch.randn(comp.V.shape, generator=gen))
    return cm


def _capture(cm: ComponentModel, names: list[str]):
    """Forward hooks recording each module's (input, output); registered after the masking hooks, they see the masked output."""
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []
    for n in names:

        def hook(module, args, output, n=n):
            seen[n] = (args[0].detach().clone(), output.detach().clone())

        handles.append(cm.targets[n].module.register_forward_hook(hook))
    return seen, handles


def _random_specs(cm: ComponentModel, lead: tuple[int, ...], seed: int) -> dict[str, ModuleMask]:
    gen = torch.Generator().manual_seed(seed)
    specs = {}
    for n in cm.names:
        routed = torch.rand(lead, generator=gen) < 0.6
        routed[0, 0] = True  # at least one routed and one unrouted token per module
        routed[-1, -1] = False
        specs[n] = ModuleMask(torch.rand(*lead, cm.C(n), generator=gen), torch.rand(lead, generator=gen), routed)
    return specs


def _reference(cm: ComponentModel, name: str, x: torch.Tensor, spec: ModuleMask) -> torch.Tensor:
    """y = (x·V ⊙ m)·U + m_Δ·x·Δᵀ + b at routed tokens, x·Wᵀ + b elsewhere."""
    t, comp = cm.targets[name], cm.comp(name)
    w = t.weight().detach()
    b = t.bias().detach() if t.bias() is not None else torch.zeros(t.d_out)
    delta = w - (comp.V @ comp.U).T.detach()
    routed_out = ((x @ comp.V.detach()) * spec.mask) @ comp.U.detach() + spec.delta[..., None] * (x @ delta.T) + b
    original = x @ w.T + b
    return torch.where(spec.routed[..., None], routed_out, original)


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])  # no bias, q/k/v biases, Conv1D layout
def test_routed_masked_output_matches_hand_computation(arch):
    cm = _cm(arch)
    ids = tiny_input(VOCAB, BATCH, SEQ)
    lead = cm.lead(ids)
    specs = _random_specs(cm, lead, seed=1)
    with torch.no_grad(), cm.masked(specs):
        seen, handles = _capture(cm, cm.names)
        try:
            cm.run(ids)
        finally:
            for h in handles:
                h.remove()
    assert set(seen) == set(cm.names)
    for n in cm.names:
        x, y = seen[n]
        expected = _reference(cm, n, x, specs[n])
        assert torch.allclose(y, expected, atol=1e-5, rtol=0), (n, (y - expected).abs().max().item())
        # Unrouted tokens keep the module's own output.
        off = ~specs[n].routed
        assert torch.allclose(y[off], cm.targets[n].module(x[off]), atol=1e-6, rtol=0), n


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_zero_masks_leave_only_the_bias(arch):
    cm = _cm(arch)
    ids = tiny_input(VOCAB, BATCH, SEQ)
    lead = cm.lead(ids)
    gen = torch.Generator().manual_seed(3)
    specs = {}
    for n in cm.names:
        routed = torch.rand(lead, generator=gen) < 0.5
        routed[0, 0], routed[-1, -1] = True, False
        specs[n] = ModuleMask(torch.zeros(*lead, cm.C(n)), torch.zeros(lead), routed)
    with torch.no_grad(), cm.masked(specs):
        seen, handles = _capture(cm, cm.names)
        cm.run(ids)
        for h in handles:
            h.remove()
    n_bias = 0
    for n in cm.names:
        x, y = seen[n]
        routed = specs[n].routed
        bias = cm.targets[n].bias()
        expected_on = torch.zeros(cm.targets[n].d_out) if bias is None else bias.detach()
        n_bias += bias is not None
        assert torch.allclose(y[routed], expected_on.expand_as(y[routed]), atol=1e-6, rtol=0), n
        assert torch.allclose(y[~routed], cm.targets[n].module(x[~routed]), atol=1e-6, rtol=0), n
    assert (n_bias > 0) == (arch == "qwen2")


def _hook_counts(cm: ComponentModel) -> int:
    return sum(len(t.module._forward_hooks) + len(t.module._forward_pre_hooks) for t in cm.targets.values())


def test_hooks_are_removed_after_the_context():
    cm = _cm()
    ids = tiny_input(VOCAB, BATCH, SEQ)
    with torch.no_grad():
        ref = cm.model(input_ids=ids).logits
        specs = _random_specs(cm, cm.lead(ids), seed=2)
        with cm.masked(specs):
            assert all(len(t.module._forward_hooks) == 1 for t in cm.targets.values())
            masked = cm.run(ids)
        assert not torch.allclose(masked, ref, atol=1e-3)  # the masks did something
        assert _hook_counts(cm) == 0
        assert torch.equal(cm.model(input_ids=ids).logits, ref)
        assert torch.equal(cm.run(ids, specs), masked)  # run() hooks only for its own pass
        assert _hook_counts(cm) == 0
        with cm.caching_inputs():
            cm.run(ids)
        assert _hook_counts(cm) == 0
        # Also when the body raises.
        with pytest.raises(RuntimeError, match="boom"), cm.masked(specs):
            raise RuntimeError("boom")
        assert _hook_counts(cm) == 0
        assert torch.equal(cm.model(input_ids=ids).logits, ref)


def test_masks_for_unknown_modules_are_refused():
    cm = _cm()
    with pytest.raises(AssertionError, match="unknown"), cm.masked({"model.nope": ModuleMask(torch.ones(1, 1, C))}):
        pass
    assert _hook_counts(cm) == 0


def test_caching_inputs_shapes_values_and_detached():
    cm = _cm()
    # Make the activations carry a graph, so that "detached" is a real property of the cache.
    cm.model.get_input_embeddings().weight.requires_grad_(True)
    ids = tiny_input(VOCAB, BATCH, SEQ)
    seen, handles = _capture(cm, cm.names)
    try:
        with cm.caching_inputs() as cache:
            out = cm.run(ids)
    finally:
        for h in handles:
            h.remove()
    assert out.requires_grad  # the forward itself kept its graph
    assert list(cache) == cm.names
    for n, t in cm.targets.items():
        x = cache[n]
        assert tuple(x.shape) == (BATCH, SEQ, t.d_in), n
        assert not x.requires_grad and x.grad_fn is None, n
        assert torch.equal(x, seen[n][0]), n


def test_gradients_reach_components_and_not_the_frozen_model():
    cm = _cm()
    ids = tiny_input(VOCAB, BATCH, SEQ)
    assert not any(p.requires_grad for p in cm.model.parameters())
    lead = cm.lead(ids)
    gen = torch.Generator().manual_seed(4)
    masks = {n: torch.rand(*lead, cm.C(n), generator=gen).requires_grad_(True) for n in cm.names}
    specs = {n: ModuleMask(m, torch.rand(lead, generator=gen)) for n, m in masks.items()}
    with torch.no_grad():
        ref = torch.log_softmax(cm.run(ids), -1)
    out = torch.log_softmax(cm.run(ids, specs), -1)
    loss = torch.nn.functional.kl_div(out, ref, log_target=True, reduction="batchmean")
    loss.backward()
    for n in cm.names:
        comp = cm.comp(n)
        assert comp.U.grad is not None and comp.U.grad.abs().sum() > 0, n
        assert comp.V.grad is not None and comp.V.grad.abs().sum() > 0, n
        assert masks[n].grad is not None and masks[n].grad.abs().sum() > 0, n
    assert all(p.grad is None for p in cm.model.parameters())
    # The component parameters are exactly U and V of every matrix.
    assert {id(p) for p in cm.parameters()} - {id(p) for p in cm.model.parameters()} == {id(p) for comp in cm.components.values() for p in (comp.U, comp.V)}
