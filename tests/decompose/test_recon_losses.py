"""Reconstruction losses on a hand-computable toy: one Linear 3→2 with C = 2 and MSE to the target output.

The toy throughout (nn.Linear layout, W is (d_out, d_in)):

    V = [[1, 0],      U = [[1,  2],     V·U = [[1,  2],     W = [[1,  0, 1],     Δ = W − (V·U)ᵀ = [[0, 0, 1],
         [0, 1],           [0, -1]]            [0, -1],          [2, -1, 0]]                       [0, 0, 0]]
         [0, 0]]                               [0,  0]]

    x = [[1, 1, 2],   (token 1)
         [2, 0, 1]]   (token 2)

    a = x·V:   a1 = (1, 1),        a2 = (2, 0)
    o = x·Wᵀ:  o1 = (1+2, 2−1) = (3, 1),   o2 = (2+1, 4−0) = (3, 4)
    x·Δᵀ:      token 1 (2, 0),     token 2 (1, 0)
    component writes: row U_0 = (1, 2), row U_1 = (0, −1); a·U + x·Δᵀ = o (a1·U = (1, 1), a2·U = (2, 4)).

TargetMSE: per token the mean over the 2 outputs of (y − o)², and the loss the mean over tokens,
so L = ¼ Σ_t Σ_j (y_tj − o_tj)² and ∂L/∂y_t = ½ (y_t − o_t).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from decompose.component_model import ComponentModel, ModuleMask
from decompose.losses.kl import TargetDistribution, TargetMSE
from decompose.losses.persistent_pgd_recon import PersistentPgdRecon, PersistentPgdReconConfig
from decompose.losses.pgd_recon import PgdReconConfig, pgd_sources
from decompose.losses.recon import ReconContext, adversarial_specs, batched_kls, masked_kl, routing
from decompose.losses.stochastic_recon import StochasticRecon, StochasticReconConfig
from decompose.masks import uniform_k_routing
from decompose.targets import default_patterns, resolve_targets
from tests.fixtures import VOCAB, tiny_input, tiny_model

X = torch.tensor([[1.0, 1.0, 2.0], [2.0, 0.0, 1.0]])
W = torch.tensor([[1.0, 0.0, 1.0], [2.0, -1.0, 0.0]])
V = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
U = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
O = torch.tensor([[3.0, 1.0], [3.0, 4.0]])  # noqa: E741  # x·Wᵀ by hand (see the module docstring)


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


def _toy() -> ComponentModel:
    model = Toy()
    with torch.no_grad():
        model.lin.weight.copy_(W)
    cm = ComponentModel(model, resolve_targets(model, {"lin": 2}), output="tensor")
    with torch.no_grad():
        cm.comp("lin").V.copy_(V)
        cm.comp("lin").U.copy_(U)
    return cm


def _ctx(cm: ComponentModel, ci: torch.Tensor | None = None, seed: int = 0, step: int = 0, total: int = 10) -> ReconContext:
    target = TargetMSE(cm.run(X))
    g = torch.zeros(2, 2) if ci is None else ci
    return ReconContext(cm, X, {"lin": g}, target, torch.Generator().manual_seed(seed), step, total)


def test_toy_is_what_the_comments_say():
    cm = _toy()
    assert torch.equal(cm.run(X), O)
    assert torch.equal(cm.deltas()["lin"].detach(), torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]))
    assert cm.lead(X) == (2,)


# --- (a) one masked pass ------------------------------------------------------------------------------


def test_masked_pass_and_its_mse_by_hand():
    cm = _toy()
    ctx = _ctx(cm)
    m = torch.tensor([[0.5, 1.0], [1.0, 0.5]])
    m_delta = torch.tensor([0.5, 0.0])
    # y = (a ⊙ (m − m_Δ))·U + m_Δ·x·Wᵀ
    # token 1: m − m_Δ = (0, 0.5); a1 ⊙ · = (0, 0.5); ·U = 0.5·(0, −1) = (0, −0.5); + 0.5·(3, 1) = (1.5, 0.5)
    #          → y1 = (1.5, 0.0)
    #          (other form: (a1 ⊙ m)·U + m_Δ·x·Δᵀ = (0.5, 1)·U + 0.5·(2, 0) = (0.5, 0) + (1, 0) = (1.5, 0) ✓)
    # token 2: m_Δ = 0: a2 ⊙ m = (2, 0); ·U = 2·(1, 2) = (2, 4) → y2 = (2, 4)
    y = cm.run(X, {"lin": ModuleMask(m, m_delta)})
    assert torch.allclose(y, torch.tensor([[1.5, 0.0], [2.0, 4.0]]))
    # per token: ((1.5−3)² + (0−1)²)/2 = (2.25 + 1)/2 = 1.625;  ((2−3)² + 0²)/2 = 0.5;  mean (1.625 + 0.5)/2 = 1.0625
    assert torch.allclose(ctx.target.per_token(y), torch.tensor([1.625, 0.5]))
    spec = {"lin": ModuleMask(m, m_delta)}
    assert masked_kl(ctx, spec).item() == pytest.approx(1.0625)
    assert batched_kls(ctx, [spec])[0].item() == pytest.approx(1.0625)


def test_masked_pass_without_delta_and_with_routing():
    cm = _toy()
    ctx = _ctx(cm)
    m = torch.tensor([[0.5, 1.0], [1.0, 0.5]])
    # No Δ path: y = (a ⊙ m)·U.  token 1: (0.5, 1)·U = (0.5, 1) + (0, −1) = (0.5, 0);  token 2: (2, 0)·U = (2, 4)
    assert torch.allclose(cm.run(X, {"lin": ModuleMask(m)}), torch.tensor([[0.5, 0.0], [2.0, 4.0]]))
    # Routed off, token 1 keeps its original output o1 = (3, 1); token 2 as above.
    routed = torch.tensor([False, True])
    y = cm.run(X, {"lin": ModuleMask(m, None, routed)})
    assert torch.allclose(y, torch.tensor([[3.0, 1.0], [2.0, 4.0]]))
    # MSE: token 1 is exact (0), token 2 ((2−3)² + 0)/2 = 0.5 → mean 0.25
    assert masked_kl(ctx, {"lin": ModuleMask(m, None, routed)}).item() == pytest.approx(0.25)


def test_all_masks_one_reproduces_the_target_and_zero_loss():
    cm = _toy()
    ctx = _ctx(cm)
    spec = {"lin": ModuleMask(torch.ones(2, 2), torch.ones(2))}
    # m = 1, m_Δ = 1: (a ⊙ 0)·U + 1·o = o
    assert torch.equal(cm.run(X, spec), O)
    assert masked_kl(ctx, spec).item() == 0.0


# --- (b) stochastic masks --------------------------------------------------------------------------------


@pytest.mark.parametrize("subset", [False, True])
def test_stochastic_masks_draw_r_then_r_delta(subset):
    cm = _toy()
    g = torch.tensor([[0.0, 0.25], [1.0, 0.5]])
    ctx = _ctx(cm, ci=g, seed=123)
    specs = StochasticRecon(StochasticReconConfig(subset=subset)).masks(ctx)
    # The same seed, re-drawn in the loss's order: routing (only with subset), then r (*lead, C), then r_Δ (*lead).
    gen = torch.Generator().manual_seed(123)
    routed = uniform_k_routing(2, 1, gen) if subset else None
    r = torch.rand((2, 2), generator=gen)
    r_delta = torch.rand((2,), generator=gen)
    spec = specs["lin"]
    assert torch.allclose(spec.mask, g + (1 - g) * r, atol=1e-7)
    assert torch.equal(spec.delta, r_delta)
    # g = 1 gives m = 1 whatever r; g = 0 gives m = r
    assert spec.mask[1, 0].item() == 1.0
    assert spec.mask[0, 0].item() == pytest.approx(r[0, 0].item())
    if subset:
        # One module: k ~ U{1..1} = 1, so every token routes it.
        assert torch.equal(spec.routed, routed[0]) and bool(spec.routed.all())
    else:
        assert spec.routed is None
    # The generator has advanced by exactly those draws.
    assert torch.equal(ctx.generator.get_state(), gen.get_state())


def test_stochastic_mask_gradient_to_ci_is_one_minus_r():
    cm = _toy()
    g = torch.tensor([[0.2, 0.4], [0.6, 0.8]], requires_grad=True)
    ctx = _ctx(cm, ci=g, seed=5)
    m = StochasticRecon(StochasticReconConfig(subset=False)).masks(ctx)["lin"].mask
    m.sum().backward()
    r = torch.rand((2, 2), generator=torch.Generator().manual_seed(5))
    assert torch.allclose(g.grad, 1 - r, atol=1e-7)  # ∂(g + (1−g)r)/∂g = 1 − r


# --- (c) fresh PGD sources ---------------------------------------------------------------------------


def test_pgd_gradient_at_zeros_by_hand():
    # Source s = (s0, s1, s_Δ), shared by both tokens, g = 0: m = s[:2], m_Δ = s_Δ.
    # At s = 0: y = 0, so y − o = −o: r1 = (−3, −1), r2 = (−3, −4).
    # ∂y_t/∂s_c = a_tc·U_c:   s0: t1 1·(1, 2) = (1, 2),  t2 2·(1, 2) = (2, 4)
    #                         s1: t1 1·(0, −1) = (0, −1), t2 0·… = (0, 0)
    # ∂y_t/∂s_Δ = x_t·Δᵀ:      t1 (2, 0), t2 (1, 0)
    # ∂L/∂s = ½ Σ_t r_t·∂y_t/∂s:
    #   s0: ½[(−3·1 − 1·2) + (−3·2 − 4·4)] = ½(−5 − 22) = −13.5
    #   s1: ½[(−3·0 + −1·−1) + 0]          = ½(1)       =   0.5
    #   sΔ: ½[(−3·2 + 0) + (−3·1 + 0)]     = ½(−9)      =  −4.5
    cm = _toy()
    ctx = _ctx(cm)
    s = torch.zeros(1, 3, requires_grad=True)
    loss = masked_kl(ctx, adversarial_specs(ctx.ci, {"lin": s}, routing(ctx, False)))
    # L = ¼ Σ o² = ¼(9 + 1 + 9 + 16) = 8.75
    assert loss.item() == pytest.approx(8.75)
    (grad,) = torch.autograd.grad(loss, [s])
    assert torch.allclose(grad, torch.tensor([[-13.5, 0.5, -4.5]]))


def test_pgd_one_step_from_zeros_shared_and_per_token():
    cm = _toy()
    ctx = _ctx(cm)
    # Shared: 0 + 1·sign(−13.5, 0.5, −4.5) = (−1, 1, −1), clamped to [0, 1] → (0, 1, 0)
    cfg = PgdReconConfig(n_steps=1, step_size=1.0, shared=True, subset=False, init="zeros")
    src = pgd_sources(ctx, cfg, routing(ctx, False))["lin"]
    assert src.shape == (1, 3)
    assert torch.equal(src, torch.tensor([[0.0, 1.0, 0.0]]))
    # Per token, each source sees only its own token's term ½ r_t·∂y_t/∂s:
    #   t1: s0 ½(−5) = −2.5 → 0,  s1 ½(1) = 0.5 → 1,  sΔ ½(−6) = −3 → 0
    #   t2: s0 ½(−22) = −11 → 0,  s1 0 (sign 0: stays 0), sΔ ½(−3) = −1.5 → 0
    cfg = PgdReconConfig(n_steps=1, step_size=1.0, shared=False, subset=False, init="zeros")
    src = pgd_sources(ctx, cfg, routing(ctx, False))["lin"]
    assert torch.equal(src, torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    # The adversary's source raised the loss: masks m = (0, 1), m_Δ = 0 (shared)
    # t1: (a1 ⊙ (0, 1))·U = (0, −1) → y1 − o1 = (−3, −2);  t2: (0, 0)·U = 0 → y2 − o2 = (−3, −4)
    # L = ¼(9 + 4 + 9 + 16) = 9.5 > 8.75 (the loss at s = 0)
    shared = pgd_sources(ctx, PgdReconConfig(n_steps=1, step_size=1.0, subset=False, init="zeros"), routing(ctx, False))
    assert masked_kl(ctx, adversarial_specs(ctx.ci, shared, routing(ctx, False))).item() == pytest.approx(9.5)


def test_pgd_from_ones_does_not_move():
    # At s = 1 every mask is 1: y = o exactly, the residual is 0, so the gradient is exactly 0 and sign(0) = 0.
    cm = _toy()
    ctx = _ctx(cm, ci=torch.tensor([[0.3, 0.0], [0.0, 0.9]]))
    cfg = PgdReconConfig(n_steps=3, step_size=1.0, shared=True, subset=False, init="ones")
    src = pgd_sources(ctx, cfg, routing(ctx, False))["lin"]
    assert torch.equal(src, torch.ones(1, 3))


def test_pgd_half_step_with_nonzero_ci():
    # g = 0.5 everywhere, s = 0: m = 0.5, m_Δ = 0;  ∂m/∂s = 1 − g = 0.5 (positive: the signs are as for g = 0).
    # y_t − o_t = Σ_c a_tc(m_c − 1)U_c + (m_Δ − 1)x_t·Δᵀ = −½ a_t·U − x_t·Δᵀ
    #   t1: −½(1, 1) − (2, 0) = (−2.5, −0.5);   t2: −½(2, 4) − (1, 0) = (−2, −2)
    # ∂L/∂s0 = ½·0.5·[(−2.5·1 − 0.5·2) + (−2·2 − 2·4)] = ¼(−3.5 − 12) = −3.875 → 0
    # ∂L/∂s1 = ½·0.5·[(−2.5·0 + −0.5·−1) + 0]           = ¼(0.5)       =  0.125 → +0.5
    # ∂L/∂sΔ = ½·[(−2.5·2) + (−2·1)]                     = ½(−7)        = −3.5   → 0
    cm = _toy()
    ctx = _ctx(cm, ci=torch.full((2, 2), 0.5))
    s = torch.zeros(1, 3, requires_grad=True)
    (grad,) = torch.autograd.grad(masked_kl(ctx, adversarial_specs(ctx.ci, {"lin": s}, routing(ctx, False))), [s])
    assert torch.allclose(grad, torch.tensor([[-3.875, 0.125, -3.5]]))
    cfg = PgdReconConfig(n_steps=1, step_size=0.5, shared=True, subset=False, init="zeros")
    assert torch.equal(pgd_sources(ctx, cfg, routing(ctx, False))["lin"], torch.tensor([[0.0, 0.5, 0.0]]))


# --- (d) persistent PGD -----------------------------------------------------------------------------


def _ppgd(lr: float = 0.1) -> PersistentPgdRecon:
    return PersistentPgdRecon(PersistentPgdReconConfig(lr=lr, lr_warmup_frac=0.0, n_warmup_steps=0, subset=False))


def test_persistent_pgd_step_by_hand():
    cm = _toy()
    ctx = _ctx(cm)
    pp = _ppgd()
    pp.sources = {"lin": torch.full((2, 3), 0.5)}  # per_batch_per_position: one (s0, s1, s_Δ) per token
    specs = pp.masks(ctx)
    loss = masked_kl(ctx, specs)
    # g = 0, s = ½: m = ½, m_Δ = ½ → y_t − o_t = −½ a_t·U − ½ x_t·Δᵀ = −½ o_t:  r1 = (−1.5, −0.5), r2 = (−1.5, −2)
    # L = ¼(2.25 + 0.25 + 2.25 + 4) = 2.1875
    assert loss.item() == pytest.approx(2.1875)
    (0.5 * loss).backward()  # a loss coefficient scales the gradient; Adam's step does not see it
    # ∂L/∂s_t = ½ r_t·∂y_t/∂s (then ×½ for the coefficient):
    #   t1: s0 ½(−1.5·1 − 0.5·2) = −1.25,  s1 ½(−0.5·−1) = 0.25,  sΔ ½(−1.5·2) = −1.5
    #   t2: s0 ½(−1.5·2 − 2·4) = −5.5,     s1 0,                  sΔ ½(−1.5·1) = −0.75
    grad = pp.sources["lin"].grad
    assert torch.allclose(grad, 0.5 * torch.tensor([[-1.25, 0.25, -1.5], [-5.5, 0.0, -0.75]]))
    pp.after_backward(ctx)
    # First Adam step: m̂ = g, v̂ = g² → s += 0.1·g/(|g| + 1e-8) ≈ 0.1·sign(g); a zero gradient does not move.
    src = pp.sources["lin"]
    assert torch.allclose(src, torch.tensor([[0.4, 0.6, 0.4], [0.4, 0.5, 0.4]]), atol=1e-6)
    assert torch.equal(torch.sign(src - 0.5), torch.sign(grad))  # moved along the ascent direction
    assert bool(((src >= 0) & (src <= 1)).all())
    assert pp.ascent.n_steps == 1
    # Ascent: the loss at the new sources is higher (the adversary's objective rose).
    with torch.no_grad():
        assert masked_kl(ctx, adversarial_specs(ctx.ci, pp.sources, routing(ctx, False))).item() > 2.1875


def test_persistent_pgd_random_start_stays_in_unit_box_and_ascends():
    cm = _toy()
    ctx = _ctx(cm, ci=torch.tensor([[0.1, 0.2], [0.3, 0.0]]), seed=3)
    pp = PersistentPgdRecon(PersistentPgdReconConfig(lr=0.05, lr_warmup_frac=0.0, n_warmup_steps=2, subset=False))
    pp._ensure_sources(ctx)
    start = pp.sources["lin"].clone()
    assert start.shape == (2, 3)  # per_batch_per_position: (*lead, C + 1)
    assert torch.equal(start, torch.rand((2, 3), generator=torch.Generator().manual_seed(3)))  # U(0,1) from ctx's generator

    def loss_at(sources):
        with torch.no_grad():
            return masked_kl(ctx, adversarial_specs(ctx.ci, sources, routing(ctx, False))).item()

    first = loss_at({"lin": start})
    for _ in range(5):
        masked_kl(ctx, pp.masks(ctx)).backward()
        pp.after_backward(ctx)
        after = pp.sources["lin"]
        assert bool(((after >= 0) & (after <= 1)).all())
        assert not after.requires_grad  # detached after the step; masks() makes them leaves again
    # 5 × (2 inner steps in masks() + 1 after the backward) Adam ascent steps on a fixed batch raised the loss.
    assert pp.ascent.n_steps == 5 * 3
    assert loss_at(pp.sources) > first


def test_persistent_pgd_state_round_trip_is_exact():
    cm = _toy()
    ctx = _ctx(cm, seed=11)
    cfg = PersistentPgdReconConfig(lr=0.05, lr_warmup_frac=0.0, n_warmup_steps=1, subset=False)
    pp = PersistentPgdRecon(cfg)
    for _ in range(3):
        masked_kl(ctx, pp.masks(ctx)).backward()
        pp.after_backward(ctx)
    state = pp.state_dict()
    copy = PersistentPgdRecon(cfg)
    copy.load_state_dict(state)
    assert torch.equal(copy.sources["lin"], pp.sources["lin"])
    assert torch.equal(copy.ascent.exp_avg["lin"], pp.ascent.exp_avg["lin"])
    assert torch.equal(copy.ascent.exp_avg_sq["lin"], pp.ascent.exp_avg_sq["lin"])
    assert copy.ascent.n_steps == pp.ascent.n_steps == 3 * 2
    # The state is a copy: continuing the original does not change what was saved.
    saved = state["sources"]["lin"].clone()
    # And both continue identically.
    for p in (pp, copy):
        masked_kl(ctx, p.masks(ctx)).backward()
        p.after_backward(ctx)
    assert torch.equal(state["sources"]["lin"], saved)
    assert torch.equal(copy.sources["lin"], pp.sources["lin"])
    assert torch.equal(copy.ascent.exp_avg_sq["lin"], pp.ascent.exp_avg_sq["lin"])


def test_persistent_pgd_lr_warmup():
    cm = _toy()
    pp = PersistentPgdRecon(PersistentPgdReconConfig(lr=0.1, lr_warmup_frac=0.5))
    # warm = 0.5·10 = 5 steps: lr·(step+1)/5 → 0.02 at step 0, 0.1 from step 4 on
    assert pp._lr(_ctx(cm, step=0, total=10)) == pytest.approx(0.02)
    assert pp._lr(_ctx(cm, step=4, total=10)) == pytest.approx(0.1)
    assert pp._lr(_ctx(cm, step=9, total=10)) == pytest.approx(0.1)


# --- (e) batched passes equal separate ones ---------------------------------------------------------


def test_batched_kls_equal_separate_passes_toy():
    cm = _toy()
    ctx = _ctx(cm)
    m1 = torch.tensor([[0.5, 1.0], [1.0, 0.5]], requires_grad=True)
    m2 = torch.tensor([[0.25, 0.0], [0.75, 1.0]], requires_grad=True)
    p1 = {"lin": ModuleMask(m1, torch.tensor([0.5, 0.0]))}  # Δ path, every token routed
    p2 = {"lin": ModuleMask(m2, None, torch.tensor([False, True]))}  # no Δ path, token 1 routed off
    p3 = {"lin": ModuleMask(torch.ones(1, 2))}  # broadcast mask, no Δ, no routing
    batched = batched_kls(ctx, [p1, p2, p3])
    separate = [masked_kl(ctx, p) for p in (p1, p2, p3)]
    # By hand: p1 = 1.0625 (see the masked-pass test);
    # p2: token 1 routed off is exact (0); token 2: a2 ⊙ (0.75, 1) = (1.5, 0) → 1.5·(1, 2) = (1.5, 3) vs (3, 4):
    #     (2.25 + 1)/2 = 1.625;  mean 0.8125
    # p3: y = a·U: t1 (1, 1) vs (3, 1) → 2;  t2 (2, 4) vs (3, 4) → 0.5;  mean 1.25
    assert torch.allclose(torch.stack(separate), torch.tensor([1.0625, 0.8125, 1.25]))
    assert torch.allclose(torch.stack(batched), torch.stack(separate), atol=1e-6)
    # Same gradients into the masks too.
    g_batched = torch.autograd.grad(sum(batched), [m1, m2])
    g_separate = torch.autograd.grad(sum(separate), [m1, m2])
    for a, b in zip(g_batched, g_separate):
        assert torch.allclose(a, b, atol=1e-6)


def test_batched_kls_equal_separate_passes_tiny_llama():
    model = tiny_model("llama")
    cm = ComponentModel(model, resolve_targets(model, dict.fromkeys(default_patterns(model), 4)))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # components that do not sum to W: a non-trivial Δ path
        for comp in cm.components.values():
            comp.V.add_(0.3 * torch.randn(comp.V.shape, generator=gen))
    ids = tiny_input(VOCAB, batch=2, seq=5)
    lead = (2, 5)
    ctx = ReconContext(cm, ids, {}, TargetDistribution(cm.run(ids)), gen, 0, 1)
    names = cm.names
    routed = uniform_k_routing(10, len(names), gen)
    p_routed = {n: ModuleMask(torch.rand(*lead, 4, generator=gen), torch.rand(lead, generator=gen), routed[i].view(lead)) for i, n in enumerate(names)}
    p_plain = {n: ModuleMask(torch.rand(*lead, 4, generator=gen), torch.rand(lead, generator=gen)) for n in names}
    p_no_delta = {n: ModuleMask(torch.rand(*lead, 4, generator=gen)) for n in names}
    passes = [p_routed, p_plain, p_no_delta]
    with torch.no_grad():
        batched = torch.stack(batched_kls(ctx, passes))
        separate = torch.stack([masked_kl(ctx, p) for p in passes])
    assert bool((separate > 0).all())
    assert torch.allclose(batched, separate, atol=1e-6)
    # Two passes, routing on the first only and on the second only.
    with torch.no_grad():
        for pair in ([p_routed, p_plain], [p_plain, p_routed]):
            assert torch.allclose(torch.stack(batched_kls(ctx, pair)), torch.stack([masked_kl(ctx, p) for p in pair]), atol=1e-6)
