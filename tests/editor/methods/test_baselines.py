"""Every registered baseline through the same checks: it returns exact LoRA factors of an edit that forgets
more than it damages, never touches the model it is given, and exports through `editor forget --method`
the way VPD does (merged adapter == exported checkpoint)."""

from __future__ import annotations

import json

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from editor.apply import apply_delta, factor_delta
from editor.methods import METHODS, get_method
from editor.methods.base import ForgetInputs, Progress, exact_factors, target_matrices
from editor.model_io import load_model
from lmkit.nll import mean_nll
from tests.editor.clitools import assert_clean, assert_user_error, invoke

# Small but strong settings: a few steps at a high learning rate, so the edit is measurable on a tiny model.
SMALL = {
    "ga": {"lr": 1e-2, "batch_size": 8},
    "graddiff": {"lr": 1e-2, "batch_size": 8},
    "npo": {"lr": 1e-2, "batch_size": 8, "beta": 0.1},
    "task-vector": {"lr": 5e-3, "batch_size": 8, "steps": 10, "rank": 4},
}
BASELINES = {n: m for n, m in METHODS.items() if not m.needs_decomposition}
STRENGTHS = {"ga": [1, 3], "graddiff": [1, 3], "npo": [1, 3], "task-vector": [0.5, 1.0]}


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_registry_lists_every_method():
    assert tuple(METHODS) == ("vpd-write", "vpd-scale", "vpd-project", "vpd-remove", "ga", "graddiff", "npo", "task-vector")
    assert get_method("vpd") is METHODS["vpd-write"]  # `vpd` names the default edit kind
    for b in METHODS.values():
        assert b.strength in b.settings.model_fields and len(b.sweep) >= 3


def test_exact_factors_reproduce_the_delta_at_its_numerical_rank():
    gen = torch.Generator().manual_seed(0)
    low = torch.randn(12, 3, generator=gen) @ torch.randn(3, 20, generator=gen)
    full = torch.randn(12, 20, generator=gen) * 1e-3
    factors = exact_factors({"low": low, "full": full, "zero": torch.zeros(4, 5)})
    assert set(factors) == {"low", "full"}  # an unchanged matrix is not part of the adapter
    assert factors["low"][0].shape == (3, 20) and factors["low"][1].shape == (12, 3)
    assert factors["full"][0].shape == (12, 20) and factors["full"][1].shape == (12, 12)
    for name, d in (("low", low), ("full", full)):
        a, b = factors[name]
        assert a.dtype == b.dtype == torch.float32
        torch.testing.assert_close(b @ a, d, rtol=0, atol=1e-6 * max(1.0, d.abs().max().item()))


@pytest.mark.parametrize("name", list(BASELINES))
def test_baseline_forgets_more_than_it_damages_and_leaves_the_model_alone(name, files):
    model, tok = load_model(str(files.models["llama"]))
    baseline = BASELINES[name]
    settings = baseline.settings(**SMALL[name])
    original = _weights(model)
    steps = []
    inputs = ForgetInputs(model, tok, files.forget_texts, files.retain_texts)
    edits = baseline.run(inputs, settings, STRENGTHS[name], Progress(step=lambda s, n, note="": steps.append(s)))
    assert all(torch.equal(original[k], v) for k, v in _weights(model).items())  # trained on a copy
    assert set(edits) == {float(s) for s in STRENGTHS[name]}
    assert all(e.seconds > 0 and e.method == name for e in edits.values())
    assert steps and steps[-1] == (settings.steps if name == "task-vector" else max(STRENGTHS[name]))
    log = edits[float(STRENGTHS[name][-1])].log["training"]
    assert log and all(torch.isfinite(torch.tensor(r["loss"])) for r in log)

    targets = target_matrices(model)
    for factors in (e.factors for e in edits.values()):
        assert factors and set(factors) <= set(targets)
        for n, (a, b) in factors.items():
            assert a.shape[1] == targets[n].d_in and b.shape[0] == targets[n].d_out and a.shape[0] == b.shape[1]
            assert torch.isfinite(a).all() and torch.isfinite(b).all()
    weak, strong = (edits[float(s)].factors for s in STRENGTHS[name])
    assert any(not torch.equal(factor_delta(weak)[n], factor_delta(strong)[n]) for n in strong)

    forget_before, retain_before = mean_nll(model, tok, files.forget_texts).mean, mean_nll(model, tok, files.retain_texts).mean
    applied = apply_delta(targets, factor_delta(strong))
    forget_after, retain_after = mean_nll(model, tok, files.forget_texts).mean, mean_nll(model, tok, files.retain_texts).mean
    applied.revert()
    assert all(torch.equal(original[k], v) for k, v in _weights(model).items())
    print(f"\n{name}: forget {forget_before:.3f} → {forget_after:.3f}, retain {retain_before:.3f} → {retain_after:.3f}")
    assert forget_after - forget_before > 0.01
    assert forget_after - forget_before > retain_after - retain_before


@pytest.mark.parametrize(
    ("name", "arch"), [("ga", "llama"), ("graddiff", "llama"), ("npo", "llama"), ("task-vector", "llama"), ("npo", "gpt2"), ("task-vector", "gpt2")]
)
def test_forget_method_exports_like_vpd(name, arch, files, tmp_path):
    out = tmp_path / "edited"
    sets = [x for k, v in SMALL[name].items() for x in ("--set", f"{k}={v}")]
    strength = str(STRENGTHS[name][0])
    result = invoke(
        "forget",
        "--method",
        name,
        "--model",
        files.models[arch],
        "--dataset",
        files.forget,
        "--retain",
        files.retain,
        "--out",
        out,
        "--strength",
        strength,
        *sets,
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert_clean(result)
    printed = json.loads(result.stdout)
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "config.json", "adapter", "edit.json", "README.md"}
    assert not list(tmp_path.glob("*.tmp-export"))
    m = json.loads((out / "edit.json").read_text())
    assert printed.pop("out") == str(out) and printed.pop("seconds_total") > 0 and printed == m
    assert m["method"] == name and m["format"] == "editor-edit/2"
    assert m["strength"] == {"field": BASELINES[name].strength, "value": m["settings"][BASELINES[name].strength]}
    assert float(m["strength"]["value"]) == float(strength)
    assert m["data"]["forget"]["documents"] == 24 and len(m["data"]["forget"]["sha256"]) == 64
    assert m["model"]["fingerprint_before"] != m["model"]["fingerprint_after"]
    assert set(m["metrics"]["before"]) == set(m["metrics"]["after"]) == {"forget_nll", "retain_nll"}
    assert f"--method {name}" in (out / "README.md").read_text()

    original = AutoModelForCausalLM.from_pretrained(files.models[arch])
    edited = AutoModelForCausalLM.from_pretrained(out)
    a, b = _weights(original), _weights(edited)
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    weight_key = {n: f"{n}.weight" for n in m["changed_modules"]}
    assert changed == set(weight_key.values())  # only attention/MLP matrices, as recorded
    targets = target_matrices(original)
    for n, c in m["changed_modules"].items():
        # The task vector is exactly rank r; a gradient update is full rank and exported at full rank.
        assert c["rank"] == (SMALL[name]["rank"] if name == "task-vector" else min(targets[n].d_in, targets[n].d_out))
    config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert set(config["target_modules"]) == set(m["changed_modules"])
    assert config["fan_in_fan_out"] is (arch == "gpt2")
    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(files.models[arch]), out / "adapter").merge_and_unload()
    err = max((v - b[k]).abs().max().item() for k, v in _weights(merged).items())
    print(f"\n{name}/{arch}: max |merged adapter − exported| = {err:.3g}")
    assert err <= 1e-6


def test_forget_method_bad_input_is_a_user_error(files, tmp_path):
    out = tmp_path / "edited"
    base = ["forget", "--model", files.models["llama"], "--dataset", files.forget, "--retain", files.retain, "--out", out]
    cases = [
        (["--method", "rmu"], "unknown method 'rmu'"),
        (["--method", "ga", "--set", "max_retain_kl=0.1"], "max_retain_kl"),
        (["--method", "ga", "--strength", "2.5"], "steps"),
        (["--method", "npo", "--set", "beta=-1"], "beta"),
        (["--method", "task-vector", "--set", "nope=1"], "nope"),
        (["--method", "graddiff", "--set", "lr"], "--set expects key=value"),
        (["--method", "ga", "--set", "steps=3", "--strength", "2"], "do not also --set it"),
    ]
    for extra, fragment in cases:
        result = invoke(*base, *extra)
        assert_user_error(result, fragment)
        assert list(tmp_path.iterdir()) == []
