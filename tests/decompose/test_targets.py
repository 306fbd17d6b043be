"""Target resolution: default patterns per architecture, layout-agnostic weight access, strict errors, fingerprint."""

from __future__ import annotations

import types

import pytest
import torch
from torch import nn

from decompose.errors import DecompositionError
from decompose.targets import DEFAULT_PATTERNS, default_patterns, fingerprint, resolve_targets
from tests.fixtures import ARCHS, N_LAYERS, VOCAB, tiny_input, tiny_model

PER_LAYER = {"llama": 7, "mistral": 7, "qwen2": 7, "gpt2": 4, "gpt_neox": 4, "phi3": 4}


def _defaults(model, c: int = 8):
    return resolve_targets(model, {p: c for p in default_patterns(model)})


def test_every_fixture_arch_has_defaults():
    assert set(ARCHS) <= set(DEFAULT_PATTERNS)


@pytest.mark.parametrize("arch", ARCHS)
def test_default_patterns_resolve_per_layer(arch):
    model = tiny_model(arch)
    targets = _defaults(model, c=5)
    assert len(targets) == PER_LAYER[arch] * N_LAYERS
    assert all(c == 5 for _, c in targets)
    names = [t.name for t, _ in targets]
    # named_modules order is kept, and nothing embedding-like slips in.
    order = [n for n, _ in model.named_modules()]
    assert names == sorted(names, key=order.index)
    assert not any("embed" in n or n == "lm_head" or n.endswith(("wte", "wpe")) for n in names)
    expected_kind = "conv1d" if arch == "gpt2" else "linear"
    assert {t.kind for t, _ in targets} == {expected_kind}


@pytest.mark.parametrize("arch", ARCHS)
def test_weight_layout_reproduces_module_output(arch):
    model = tiny_model(arch)
    for t, _ in _defaults(model):
        w = t.weight()
        assert tuple(w.shape) == (t.d_out, t.d_in)
        x = torch.randn(2, 3, t.d_in, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            expected = t.module(x)
            got = x @ w.T + (t.bias() if t.bias() is not None else 0)
        assert torch.allclose(got, expected, atol=1e-6), t.name


def test_qwen2_qkv_have_bias():
    targets = {t.name.rsplit(".", 1)[-1]: t for t, _ in _defaults(tiny_model("qwen2"))}
    assert all(targets[k].bias() is not None for k in ("q_proj", "k_proj", "v_proj"))
    assert targets["o_proj"].bias() is None


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_set_weight_round_trips_in_module_layout_and_dtype(arch):
    model = tiny_model(arch).to(torch.bfloat16)
    t, _ = _defaults(model)[0]
    param = t.module.weight
    new = torch.randn(t.d_out, t.d_in, generator=torch.Generator().manual_seed(2))
    t.set_weight(new)
    assert t.module.weight is param and param.dtype == torch.bfloat16
    assert torch.equal(t.weight(), new.to(torch.bfloat16))
    stored = param.T if arch == "gpt2" else param
    assert torch.equal(stored, new.to(torch.bfloat16))
    with pytest.raises(ValueError):
        t.set_weight(new.T if t.d_in != t.d_out else new[:-1])


def test_set_weight_changes_model_output():
    model = tiny_model("gpt2")
    ids = tiny_input(VOCAB)
    with torch.no_grad():
        before = model(ids).logits
        t, _ = _defaults(model)[0]
        t.set_weight(torch.zeros(t.d_out, t.d_in))
        after = model(ids).logits
    assert not torch.allclose(before, after)


def test_unmatched_pattern_lists_near_matches():
    model = tiny_model("llama")
    with pytest.raises(DecompositionError) as e:
        resolve_targets(model, {"model.layers.*.self_attn.q_prj": 4})
    msg = str(e.value)
    assert "'model.layers.*.self_attn.q_prj' matches no module" in msg
    assert "near matches:" in msg and "model.layers.0.self_attn.q_proj" in msg
    assert len(msg.split("near matches:")[1].split(",")) <= 5


def test_unmatched_pattern_without_near_matches():
    with pytest.raises(DecompositionError, match="matches no module; no near matches"):
        resolve_targets(tiny_model("llama"), {"zzz": 4})


def test_module_matched_twice_names_both_patterns():
    model = tiny_model("llama")
    with pytest.raises(DecompositionError) as e:
        resolve_targets(model, {"model.layers.*.self_attn.q_proj": 4, "model.layers.0.self_attn.*_proj": 8})
    msg = str(e.value)
    assert "model.layers.0.self_attn.q_proj" in msg
    assert "'model.layers.*.self_attn.q_proj'" in msg and "'model.layers.0.self_attn.*_proj'" in msg


@pytest.mark.parametrize(
    ("arch", "pattern", "needle"),
    [
        ("llama", "model.embed_tokens", "Embedding"),
        ("llama", "lm_head", "embedding"),
        ("gpt2", "transformer.wte", "Embedding"),
        ("gpt2", "lm_head", "embedding"),  # tied to wte
        ("llama", "model.layers.0", "LlamaDecoderLayer"),
        ("llama", "model.layers.*.mlp.*", "act_fn"),
    ],
)
def test_non_linear_or_embedding_match_is_rejected(arch, pattern, needle):
    with pytest.raises(DecompositionError, match=needle):
        resolve_targets(tiny_model(arch), {pattern: 4})


def test_bad_inputs_rejected():
    model = tiny_model("llama")
    with pytest.raises(DecompositionError):
        resolve_targets(model, {})
    for bad in (0, -1, 2.5, True):
        with pytest.raises(DecompositionError, match="positive integer"):
            resolve_targets(model, {"model.layers.*.mlp.up_proj": bad})
    with pytest.raises(DecompositionError, match="supported: .*llama"):
        default_patterns(types.SimpleNamespace(config=types.SimpleNamespace(model_type="bert")))
    with pytest.raises(DecompositionError):
        default_patterns(nn.Linear(2, 2))


def test_fingerprint_stable_and_sensitive():
    model = tiny_model("qwen2")
    targets = [t for t, _ in _defaults(model)]
    fp = fingerprint(targets)
    assert len(fp) == 64 and fp == fingerprint(targets)
    assert fp == fingerprint([t for t, _ in _defaults(tiny_model("qwen2"))])  # same seed, fresh model
    assert fp != fingerprint([t for t, _ in _defaults(tiny_model("qwen2", seed=1))])
    assert fp != fingerprint(targets[:-1])
    with torch.no_grad():
        targets[3].module.weight[0, 0] += 1e-3
    changed = fingerprint(targets)
    assert changed != fp
    with torch.no_grad():
        targets[3].module.weight[0, 0] -= 1e-3
        targets[0].module.bias[0] += 1e-3  # a bias change counts too
    assert fingerprint(targets) not in (fp, changed)


def test_fingerprint_ignores_storage_dtype_when_values_equal():
    model = tiny_model("gpt2")
    targets = [t for t, _ in _defaults(model)]
    with torch.no_grad():
        for t in targets:  # bf16-representable values, so the float32 bytes survive the round trip
            t.set_weight(t.weight().to(torch.bfloat16).float())
            t.bias().copy_(t.bias().to(torch.bfloat16).float())
    fp = fingerprint(targets)
    model.to(torch.bfloat16)
    assert fingerprint(targets) == fp
