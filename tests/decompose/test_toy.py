"""Toy models with known mechanisms, the recovery score, the SPD switch and APD, and SPD's recovery of small
compressed computation (about 25 CPU seconds; fast tier); the recovery of SPD and VPD on TMS 5→2 is in the
slow tier (tens of CPU seconds each)."""

from __future__ import annotations

import math

import pytest
import torch

from decompose.apd import ApdDecomposer
from decompose.config import DecomposeConfig
from decompose.toy.models import SPECS, TMS, Toy, train_toy
from decompose.toy.recovery import recovery
from decompose.toy.run import decompose_toy, rank_one_stack
from editor.recipe import load_recipe


def pentagon_tms() -> Toy:
    """TMS 5→2 with the ideal pentagon (no training): W_in column f = (cos 2πf/5, sin 2πf/5), W_out = W_inᵀ."""
    model = TMS(5, 2)
    angles = torch.arange(5) * 2 * math.pi / 5
    w = torch.stack([angles.cos(), angles.sin()])
    with torch.no_grad():
        model.W_in.weight.copy_(w)
        model.W_out.weight.copy_(w.T)
        model.W_out.bias.fill_(-0.2)
    return Toy(SPECS["tms-5-2"], model.eval(), seed=0)


def test_recovery_is_one_for_the_true_mechanisms_and_counts_extra_alive():
    toy = pentagon_tms()
    mech = toy.mechanisms()
    comps = {n: torch.stack([p for _, p in sorted(parts.items())] + [torch.randn(*parts[0].shape)]) for n, parts in mech.items()}
    alive = {n: torch.tensor([True] * 5 + [False]) for n in mech}
    r = recovery(toy, comps, alive)
    assert r.mean_cosine == pytest.approx(1.0, abs=1e-6) and r.recovered == r.pairs == 10
    assert r.distinct and r.extra_alive == 0
    r = recovery(toy, comps, {n: torch.ones(6, dtype=torch.bool) for n in mech})
    assert r.extra_alive == 2 and r.mean_cosine == pytest.approx(1.0, abs=1e-6)


def test_recovery_drops_when_one_component_serves_two_features():
    toy = pentagon_tms()
    mech = toy.mechanisms()
    # Feature 0 and 1 merged into one rank-2 piece: both are matched to it with cosine 1/√2.
    comps = {n: torch.stack([parts[0] + parts[1], parts[2], parts[3], parts[4]]) for n, parts in mech.items()}
    r = recovery(toy, comps, {n: torch.ones(4, dtype=torch.bool) for n in mech})
    assert r.mean_cosine == pytest.approx((6 + 4 / math.sqrt(2)) / 10, abs=1e-5)
    assert not r.distinct and r.extra_alive == -2


def test_rank_one_stack_matches_components_weight():
    V, U = torch.randn(3, 4), torch.randn(4, 2)
    assert torch.allclose(rank_one_stack(U, V).sum(0), (V @ U).T, atol=1e-6)


def test_a_cached_toy_is_the_saved_one_frozen(tmp_path):
    from decompose.toy.models import cache_path, cached_toy

    saved = pentagon_tms()
    torch.save({"model": saved.model.state_dict()}, cache_path("tms-5-2", 0, tmp_path))
    toy = cached_toy("tms-5-2", 0, tmp_path)
    assert all(torch.equal(v, saved.model.state_dict()[k]) for k, v in toy.model.state_dict().items())
    assert not toy.model.training and not any(p.requires_grad for p in toy.model.parameters())


def test_resid_mlp_mechanisms_are_w_in_per_feature_and_ignore_the_unread_residual_space():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    from decompose.toy.models import ResidMLP

    spec = SPECS["resid-mlp-20-10"]
    model = ResidMLP(spec.n_features, spec.d_embed, spec.d_hidden, 1, gen)
    toy = Toy(spec, model, 0)
    mech = toy.mechanisms()
    w_in = toy.weight("layers.0.mlp_in")
    f = 3
    # In feature coordinates: column f is what W_in does with feature f's direction, the rest is zero.
    assert torch.allclose(mech["layers.0.mlp_in"][f][:, f], w_in @ model.W_E[f], atol=1e-5)
    assert mech["layers.0.mlp_in"][f].count_nonzero(0).tolist() == [spec.d_hidden if g == f else 0 for g in range(spec.n_features)]
    # mlp_out: one dense mechanism of rank d_mlp, nothing per feature.
    assert mech["layers.0.mlp_out"] == {} and toy.dense_rank("layers.0.mlp_out") == spec.d_hidden
    # The ideal subcomponents u_f = W_in·e_f, v_f = the dual of e_f (v_f·e_g = δ_fg) score 1, whatever
    # they do in the residual directions no feature uses.
    dual = torch.linalg.pinv(model.W_E).T  # (n_features, d_embed), dual @ W_Eᵀ = I
    junk = torch.randn(spec.n_features, spec.d_embed)
    junk = junk - junk @ torch.linalg.pinv(model.W_E) @ model.W_E  # orthogonal to every feature direction
    u = w_in @ model.W_E.T  # (d_mlp, n_features)
    comps = {
        "layers.0.mlp_in": torch.einsum("of,fi->foi", u, dual + junk),
        "layers.0.mlp_out": torch.zeros(1, spec.d_embed, spec.d_hidden),
    }
    alive = {"layers.0.mlp_in": torch.ones(spec.n_features, dtype=torch.bool), "layers.0.mlp_out": torch.ones(1, dtype=torch.bool)}
    one_hot = {"layers.0.mlp_in": torch.eye(spec.n_features), "layers.0.mlp_out": torch.ones(spec.n_features, 1)}
    r = recovery(toy, comps, alive, "matrix", one_hot)
    assert r.mean_cosine == pytest.approx(1.0, abs=1e-4) and r.pairs == spec.n_features and r.distinct
    assert r.ci_recovered == spec.n_features and (r.dense_on, r.dense_rank) == (1, spec.d_hidden)
    assert r.mechanisms == spec.n_features + spec.d_hidden


def test_ci_recovery_wants_one_subcomponent_per_feature_owned_by_that_feature_alone():
    from decompose.toy.recovery import ci_recovered

    on = torch.tensor([[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1]], dtype=torch.bool)
    # Feature 0: its own subcomponent. 1: two on. 2 and 3: one each, but shared.
    assert ci_recovered(on, [0, 1, 2, 3]) == 1 and ci_recovered(on, [1, 2]) == 0


def test_spd_is_vpd_without_the_adversary():
    losses = [{"kind": "stochastic_recon"}, {"kind": "persistent_pgd_recon"}, {"kind": "pgd_recon"}]
    assert [r.kind for r in DecomposeConfig(losses=losses).recon] == ["stochastic_recon", "persistent_pgd_recon", "pgd_recon"]
    assert [r.kind for r in DecomposeConfig(method="spd", losses=losses).recon] == ["stochastic_recon"]
    with pytest.raises(ValueError, match="spd drops"):
        DecomposeConfig(method="spd", losses=[{"kind": "persistent_pgd_recon"}])
    assert DecomposeConfig(method="apd").losses == []


def test_shipped_spd_recipe_for_tiny_toxic_has_no_adversary():
    cfg = load_recipe(DecomposeConfig, "tiny-toxic-spd", "decompose")
    assert cfg.method == "spd" and [r.kind for r in cfg.recon] == ["stochastic_recon"]


def test_apd_runs_and_is_faithful():
    toy = pentagon_tms()
    cfg = load_recipe(DecomposeConfig, "tms-5-2-apd", "decompose", ["steps=30", "batch_size=128", "apd.warmup_steps=300"])
    dec = ApdDecomposer(toy.model, cfg, toy.batches(cfg.batch_size))
    first = dec.faithfulness().item()
    metrics = {}
    while not dec.done:
        metrics = dec.train_step()
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    faith = dec.faithfulness().item()
    assert faith < 1e-3 * first and faith < 1e-4, (first, faith)
    # The components sum to the weights, so all of them together reproduce the target's output.
    x = toy.batches(256)(torch.Generator().manual_seed(5))
    with torch.no_grad():
        out = dec.run_components(x, torch.ones(x.shape[0], cfg.apd.C))
        assert (out - toy.model(x)).abs().max() < 0.05
    # Batch top-k keeps round(topk·B) (input, component) pairs.
    _, attr = dec.attributions(x)
    assert attr.shape == (256, cfg.apd.C) and int(dec.topk_mask(attr).sum()) == round(cfg.apd.topk * 256)


def test_apd_attributions_are_squared_directional_derivatives():
    toy = pentagon_tms()
    cfg = DecomposeConfig(method="apd", output_loss="mse", targets={"W_in": 1, "W_out": 1}, apd={"C": 3, "warmup_steps": 0})
    dec = ApdDecomposer(toy.model, cfg, toy.batches(4))
    x = torch.rand(2, 5)
    _, attr = dec.attributions(x)
    w_in, w_out = toy.weight("W_in"), toy.weight("W_out")
    for b in range(2):
        for c in range(3):
            # The derivative along component c's pieces in both matrices at once, through the ReLU.
            p_in, p_out = dec.pieces("W_in")[c].detach(), dec.pieces("W_out")[c].detach()
            f = lambda t: torch.relu((w_out + t * p_out) @ ((w_in + t * p_in) @ x[b]) + toy.model.W_out.bias)  # noqa: E731, B023
            jac = torch.autograd.functional.jacobian(f, torch.zeros(()))
            assert attr[b, c].item() == pytest.approx(jac.pow(2).sum().item(), rel=1e-4)


def test_apd_refuses_language_models():
    from decompose.errors import DecompositionError

    with pytest.raises(DecompositionError, match="vector outputs"):
        ApdDecomposer(pentagon_tms().model, DecomposeConfig(method="apd", targets={"W_in": 1}), lambda g: torch.rand(2, 5))


def test_apd_warmup_uses_its_lr_and_frees_its_optimiser():
    toy = pentagon_tms()
    apd = {"C": 3, "warmup_steps": 2, "warmup_lr": 0.05}
    cfg = DecomposeConfig(method="apd", output_loss="mse", targets={"W_in": 1, "W_out": 1}, steps=1, batch_size=8, apd=apd)
    dec = ApdDecomposer(toy.model, cfg, toy.batches(8))
    assert dec.warm_opt.param_groups[0]["lr"] == 0.05 and dec.total_steps == 3
    dec.train_step()
    dec.train_step()
    assert dec.warm_opt.state  # Adam moments while warming up
    dec.train_step()
    assert not dec.warm_opt.state and dec.done


def test_apd_output_is_recorded_and_refuses_an_existing_out(tmp_path):
    """run_decomposition's apd branch: the output folder records its files (so --force may replace it)."""
    from decompose.errors import DecompositionError
    from decompose.run import run_decomposition
    from lmkit.files import check_replaceable

    toy = pentagon_tms()
    cfg = DecomposeConfig(method="apd", output_loss="mse", targets={"W_in": 1, "W_out": 1}, steps=2, batch_size=8, apd={"C": 3, "warmup_steps": 1})
    out = run_decomposition(toy.model, toy.batches(8), cfg, tmp_path / "apd")
    assert (out / ".editor-output").is_file()
    check_replaceable(out, force=True)  # every file in it is the tool's own
    with pytest.raises(DecompositionError, match="already exists"):
        run_decomposition(toy.model, toy.batches(8), cfg, out)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["tms-5-2-spd", "tms-5-2-vpd"])
def test_spd_and_vpd_recover_every_mechanism(recipe):
    toy = train_toy(recipe.rsplit("-", 1)[0], seed=0)
    result = decompose_toy(toy, load_recipe(DecomposeConfig, recipe, "decompose"))
    r = result.recovery
    assert r.mean_cosine >= 0.95 and r.distinct, r
    assert r.extra_alive <= 2, r


def test_spd_recovers_small_compressed_computation():
    """resid-mlp-20-10 with its SPD recipe (3,000 steps): one mlp_in subcomponent per feature, owned by that
    feature alone, and about d_mlp subcomponents in mlp_out, as the SPD paper finds at 100 features."""
    toy = train_toy("resid-mlp-20-10", seed=0)
    r = decompose_toy(toy, load_recipe(DecomposeConfig, "resid-mlp-20-10-spd", "decompose")).recovery
    assert r.mean_cosine >= 0.9 and r.recovered >= 0.9 * r.pairs, r
    assert r.ci_recovered is not None and r.ci_recovered >= 0.9 * r.pairs, r
    assert r.dense_on is not None and r.dense_rank is not None and r.dense_on <= 1.5 * r.dense_rank, r
