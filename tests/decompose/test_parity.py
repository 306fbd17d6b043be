"""Output parity of the hooked ComponentModel with the original model, for every supported architecture.

With every component mask and the Δ-mask at 1 a masked pass must reproduce the model exactly,
whatever U and V hold (the Δ path then carries the rest of W), and whichever tokens are routed.
With U, V an exact factorisation of W the components alone (masks 1, no Δ) must reproduce it too.
"""

from __future__ import annotations

import pytest
import torch

from decompose.component_model import ComponentModel, ModuleMask
from decompose.config import DecomposeConfig
from decompose.targets import TargetMatrix
from decompose.train import select_targets
from tests.fixtures import ARCHS, VOCAB, tiny_input, tiny_model

BATCH, SEQ = 2, 7


def _component_model(arch: str, C: int | None) -> ComponentModel:
    """The arch's default targets with C components each; C=None: min(d_in, d_out) + 3 per matrix."""
    model = tiny_model(arch)
    cfg = DecomposeConfig(default_C=C or 1, losses=[{"kind": "stochastic_recon"}])
    targets: list[tuple[TargetMatrix, int]] = select_targets(model, cfg)
    if C is None:
        targets = [(t, min(t.d_in, t.d_out) + 3) for t, _ in targets]
    return ComponentModel(model, targets)


def _ones_specs(cm: ComponentModel, lead: tuple[int, ...], routed: dict | None = None) -> dict[str, ModuleMask]:
    routed = routed or {}
    return {n: ModuleMask(torch.ones(*lead, cm.C(n)), torch.ones(*lead), routed.get(n)) for n in cm.names}


def _perturb(cm: ComponentModel, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for comp in cm.components.values():
            comp.V.add_(torch.randn(comp.V.shape, generator=gen))
            comp.U.mul_(3.0).add_(torch.randn(comp.U.shape, generator=gen))


def _exact_factorisation(cm: ComponentModel, name: str) -> None:
    """V = Vhᵀ·diag(√S), U = diag(√S)·Uᵀ from W = U·diag(S)·Vh, padded with zero components up to C."""
    w = cm.targets[name].weight().detach().double()
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    r = s.numel()
    comp = cm.comp(name)
    assert comp.C >= r, f"{name}: C={comp.C} < rank bound {r}"
    root = s.sqrt()
    V = torch.zeros(w.shape[1], comp.C, dtype=torch.float64)
    U = torch.zeros(comp.C, w.shape[0], dtype=torch.float64)
    V[:, :r] = vh.T * root
    U[:r] = root[:, None] * u.T
    with torch.no_grad():
        comp.V.copy_(V)
        comp.U.copy_(U)


@pytest.mark.parametrize("arch", ARCHS)
def test_all_masks_one_with_delta_reproduces_logits(arch):
    cm = _component_model(arch, C=8)
    ids = tiny_input(VOCAB, BATCH, SEQ)
    lead = cm.lead(ids)
    assert lead == (BATCH, SEQ)
    with torch.no_grad():
        ref = cm.run(ids)
        specs = _ones_specs(cm, lead)
        assert torch.allclose(cm.run(ids, specs), ref, atol=1e-5, rtol=0)
        # Components far from W: the Δ path now carries most of the weight, the output must not move.
        _perturb(cm, seed=1)
        assert max(d.abs().max().item() for d in cm.deltas().values()) > 0.5
        assert torch.allclose(cm.run(ids, specs), ref, atol=1e-5, rtol=0)
        # Random routing: routed tokens go through components + Δ, the rest keep the module output.
        gen = torch.Generator().manual_seed(2)
        routed = {n: torch.rand(lead, generator=gen) < 0.5 for n in cm.names}
        assert torch.allclose(cm.run(ids, _ones_specs(cm, lead, routed)), ref, atol=1e-5, rtol=0)
        # Broadcast masks (1, 1, C) and (1, 1) behave like full ones.
        bcast = {n: ModuleMask(torch.ones(1, 1, cm.C(n)), torch.ones(1, 1)) for n in cm.names}
        assert torch.allclose(cm.run(ids, bcast), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_perturbed_components_change_output_without_delta(arch):
    """Sanity for the test above: the hooks really are active, so the masked pass is not trivially the original."""
    cm = _component_model(arch, C=8)
    ids = tiny_input(VOCAB, BATCH, SEQ)
    _perturb(cm, seed=1)
    with torch.no_grad():
        ref = cm.run(ids)
        no_delta = {n: ModuleMask(torch.ones(*cm.lead(ids), cm.C(n))) for n in cm.names}
        assert (cm.run(ids, no_delta) - ref).abs().max() > 1e-2


@pytest.mark.parametrize("arch", ARCHS)
def test_exact_factorisation_reproduces_logits_without_delta(arch):
    # Components wide enough for an exact factorisation: C ≥ min(d_in, d_out) for every matrix, plus zero padding.
    cm = _component_model(arch, C=None)
    for n in cm.names:
        _exact_factorisation(cm, n)
        assert cm.deltas()[n].abs().max() < 1e-5
    ids = tiny_input(VOCAB, BATCH, SEQ, seed=3)
    lead = cm.lead(ids)
    with torch.no_grad():
        ref = cm.run(ids)
        pure = {n: ModuleMask(torch.ones(*lead, cm.C(n))) for n in cm.names}
        assert torch.allclose(cm.run(ids, pure), ref, atol=1e-4, rtol=0)
        # The zero-padded components carry nothing: masking them out changes nothing either.
        r = {n: min(cm.targets[n].d_in, cm.targets[n].d_out) for n in cm.names}
        padded_off = {}
        for n in cm.names:
            m = torch.ones(*lead, cm.C(n))
            m[..., r[n] :] = 0
            padded_off[n] = ModuleMask(m)
        assert torch.allclose(cm.run(ids, padded_off), ref, atol=1e-4, rtol=0)
        # ... while masking a real component out does change the output.
        first_off = {}
        for n in cm.names:
            m = torch.ones(*lead, cm.C(n))
            m[..., 0] = 0
            first_off[n] = ModuleMask(m)
        assert (cm.run(ids, first_off) - ref).abs().max() > 1e-3
