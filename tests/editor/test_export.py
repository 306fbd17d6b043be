"""`editor.export`: the exported model and the PEFT LoRA adapter both reproduce the edit exactly."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, LlamaConfig

from decompose.component_model import ComponentModel, ModuleMask
from decompose.targets import default_patterns, resolve_targets
from editor.apply import ComponentRef, apply_delta, removal_delta, removal_factors
from editor.card import model_card
from editor.edit import ComponentChange, Edit
from editor.errors import EditorError
from editor.export import export_edit, save_lora_adapter
from tests.fixtures import VOCAB, tiny_input, tiny_model

C = 8
DATA = {"forget": {"source": "förget.jsonl", "documents": 2}, "retain": {"source": "retain.jsonl", "documents": 3}}


def make_edit(cm: ComponentModel, removed: list[ComponentRef]) -> Edit:
    """An Edit removing `removed`, with a small hand-written record (ünïcode included)."""
    return Edit(
        method="vpd",
        summary=f"{len(removed)} rank-1 components removed",
        settings={},
        strength={"field": "max_retain_kl", "value": None},
        factors=removal_factors(cm, removed),
        components=[ComponentChange(r.module, r.index, "removed", 0.0, fires_on=["ünï"]) for r in removed],
        metrics={"before": {"forget_nll": 1.0}, "after": {"forget_nll": 2.0}},
        data=DATA,
        model={"source": "tiny"},
    )


# Two components in one module, one each in one or two others; the fused-qkv modules are included.
REMOVED = {
    "llama": [
        ("model.layers.1.self_attn.q_proj", 0),
        ("model.layers.1.self_attn.q_proj", 5),
        ("model.layers.0.mlp.down_proj", 3),
    ],
    "gpt2": [
        ("transformer.h.1.attn.c_attn", 0),
        ("transformer.h.1.attn.c_attn", 5),
        ("transformer.h.0.mlp.c_fc", 3),
        ("transformer.h.1.mlp.c_proj", 7),
    ],
    "gpt_neox": [
        ("gpt_neox.layers.1.attention.query_key_value", 2),
        ("gpt_neox.layers.1.attention.query_key_value", 6),
        ("gpt_neox.layers.0.mlp.dense_4h_to_h", 1),
    ],
    "phi3": [
        ("model.layers.0.self_attn.qkv_proj", 1),
        ("model.layers.0.self_attn.qkv_proj", 4),
        ("model.layers.1.mlp.gate_up_proj", 7),
    ],
}
ARCHS = list(REMOVED)


def _component_model(model) -> ComponentModel:
    """Default targets with random small components, the same for every call (fixed seed)."""
    cm = ComponentModel(model, resolve_targets(model, dict.fromkeys(default_patterns(model), C)))
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for comp in cm.components.values():
            comp.V.copy_(0.3 * torch.randn(comp.V.shape, generator=gen))
            comp.U.copy_(0.3 * torch.randn(comp.U.shape, generator=gen))
    return cm


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


@dataclass
class Exported:
    arch: str
    model: torch.nn.Module  # the edited model, in memory
    cm: ComponentModel
    removed: list[ComponentRef]
    out: Path
    edit: Edit


@pytest.fixture(scope="module", params=ARCHS)
def exported(request, tmp_path_factory, shipped_tokenizer) -> Exported:
    arch = request.param
    model = tiny_model(arch)
    cm = _component_model(model)
    removed = [ComponentRef(m, i) for m, i in REMOVED[arch]]
    original = _weights(model)
    modules = dict(model.named_modules())
    out = tmp_path_factory.mktemp(arch) / "export"
    edit = make_edit(cm, removed)
    assert export_edit(out, model, shipped_tokenizer, edit, base_name_or_path="tiny") == out
    # Exporting applies the edit only while saving, and building the adapter wraps and unloads the model in
    # place: it must come back exactly as it was.
    assert _max_diff(original, _weights(model)) == 0.0
    assert all(a is b for a, b in zip(modules.values(), dict(model.named_modules()).values()))
    assert list(modules) == [n for n, _ in model.named_modules()]
    assert not any(p.requires_grad for p in model.parameters())
    assert not hasattr(model, "peft_config")
    edit.apply(model)  # the in-memory edited model the export is compared with
    return Exported(arch, model, cm, removed, out, edit)


def test_removal_factors_equal_removal_delta():
    cm = _component_model(tiny_model("llama"))
    removed = [ComponentRef(m, i) for m, i in REMOVED["llama"]]
    delta = removal_delta(cm, removed)
    factors = removal_factors(cm, removed)
    assert factors.keys() == delta.keys()
    for name, (a, b) in factors.items():
        r = len({i for m, i in REMOVED["llama"] if m == name})
        t = cm.targets[name]
        assert a.shape == (r, t.d_in) and b.shape == (t.d_out, r)
        assert a.dtype == b.dtype == torch.float32
        torch.testing.assert_close(b @ a, delta[name], rtol=0, atol=1e-7)


def test_exported_model_loads_plainly_and_matches(exported: Exported):
    loaded = AutoModelForCausalLM.from_pretrained(exported.out).eval()
    assert (exported.out / "model.safetensors").is_file()
    assert (exported.out / "tokenizer_config.json").is_file() or (exported.out / "tokenizer.json").is_file()
    assert _max_diff(_weights(exported.model), _weights(loaded)) == 0.0
    x = tiny_input(VOCAB)
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=x).logits, exported.model(input_ids=x).logits, rtol=0, atol=1e-6)


def test_adapter_merged_into_original_reproduces_export(exported: Exported):
    adapter = exported.out / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    modules = {r.module for r in exported.removed}
    assert set(config["target_modules"]) == modules
    assert config["base_model_name_or_path"] == "tiny"
    assert config["fan_in_fan_out"] is (exported.arch == "gpt2")
    assert config["lora_dropout"] == 0.0 and config["bias"] == "none"
    # Every adapter tensor in float32 with its module's own rank.
    tensors = load_file(adapter / "adapter_model.safetensors")
    assert all(t.dtype == torch.float32 for t in tensors.values())
    for name in modules:
        rank = len({r.index for r in exported.removed if r.module == name})
        assert tensors[f"base_model.model.{name}.lora_A.weight"].shape[0] == rank

    x = tiny_input(VOCAB)
    peft_model = PeftModel.from_pretrained(tiny_model(exported.arch), adapter).eval()
    with torch.no_grad():  # the unmerged adapter already gives the edited model's outputs
        torch.testing.assert_close(peft_model(input_ids=x).logits, exported.model(input_ids=x).logits, rtol=0, atol=1e-5)
    merged = peft_model.merge_and_unload()
    loaded = AutoModelForCausalLM.from_pretrained(exported.out)
    err = _max_diff(_weights(merged), _weights(loaded))
    print(f"\n{exported.arch}: max |merged adapter − exported| = {err:.3g}")
    assert err <= 1e-6


def test_edited_model_equals_components_masked_off(exported: Exported):
    original = tiny_model(exported.arch)
    cm = ComponentModel(original, resolve_targets(original, dict.fromkeys(default_patterns(original), C)))
    cm.components.load_state_dict(exported.cm.components.state_dict())
    specs = {}
    for name in cm.names:
        mask = torch.ones(1, 1, C)
        for r in exported.removed:
            if r.module == name:
                mask[..., r.index] = 0.0
        specs[name] = ModuleMask(mask=mask, delta=torch.ones(1, 1))
    x = tiny_input(VOCAB)
    with torch.no_grad():
        masked = cm.run(x, specs)
        plain = cm.run(x)
        edited = exported.model(input_ids=x).logits
    assert (plain - edited).abs().max() > 1e-3  # the edit does change the model
    torch.testing.assert_close(edited, masked, rtol=0, atol=1e-4)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_apply_revert_and_empty_removal_are_bit_exact(arch):
    model = tiny_model(arch)
    cm = _component_model(model)
    before = _weights(model)
    applied = apply_delta(cm.targets, removal_delta(cm, [ComponentRef(m, i) for m, i in REMOVED[arch]]))
    assert _max_diff(before, _weights(model)) > 0
    applied.revert()
    assert all(torch.equal(before[k], v) for k, v in _weights(model).items())
    apply_delta(cm.targets, removal_delta(cm, []))
    assert all(torch.equal(before[k], v) for k, v in _weights(model).items())


def test_empty_removal_exports_model_without_adapter(tmp_path, shipped_tokenizer):
    model = tiny_model("gpt2")
    cm = _component_model(model)
    before = _weights(model)
    edit = make_edit(cm, [])
    out = export_edit(tmp_path / "out", model, shipped_tokenizer, edit)
    assert not (out / "adapter").exists()
    assert all(torch.equal(before[k], v) for k, v in _weights(AutoModelForCausalLM.from_pretrained(out)).items())
    assert json.loads((out / "edit.json").read_text())["components"] == []
    with pytest.raises(EditorError, match="an empty edit"):
        save_lora_adapter(model, {}, tmp_path / "adapter", "")


def test_edit_json_and_card(exported: Exported):
    manifest = json.loads((exported.out / "edit.json").read_text(encoding="utf-8"))
    assert manifest == json.loads(json.dumps(exported.edit.manifest()))
    assert (exported.out / "README.md").read_text(encoding="utf-8") == model_card(manifest)
    assert "ünï" in (exported.out / "README.md").read_text(encoding="utf-8")
    assert not list(exported.out.parent.glob("*.tmp-export"))


def _export(out: Path, tokenizer, force: bool = False) -> Path:
    model = tiny_model("llama")
    cm = _component_model(model)
    removed = [ComponentRef(m, i) for m, i in REMOVED["llama"]]
    return export_edit(out, model, tokenizer, make_edit(cm, removed), force=force)


def test_existing_output_needs_force(tmp_path, shipped_tokenizer):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(EditorError, match="exists; pass --force to replace it"):
        _export(out, shipped_tokenizer)
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "old"
    with pytest.raises(EditorError, match="not written by editor"):  # --force never deletes what is not ours
        _export(out, shipped_tokenizer, force=True)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    (out / "keep.txt").unlink()
    _export(out, shipped_tokenizer, force=True)  # an empty folder may be written into
    first = sorted(p.name for p in out.iterdir())
    _export(out, shipped_tokenizer, force=True)  # and an earlier export replaced
    assert (out / "adapter" / "adapter_config.json").is_file() and sorted(p.name for p in out.iterdir()) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no tmp or set-aside dir left


def test_failure_midway_leaves_nothing(tmp_path, shipped_tokenizer, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(shipped_tokenizer, "save_pretrained", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        _export(tmp_path / "out", shipped_tokenizer)
    assert list(tmp_path.iterdir()) == []


def test_failure_midway_with_force_keeps_old_export(tmp_path, shipped_tokenizer, monkeypatch):
    out = _export(tmp_path / "out", shipped_tokenizer)
    old = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    model = tiny_model("llama")
    cm = _component_model(model)
    before = _weights(model)
    modules = list(model.modules())
    monkeypatch.setattr(PeftModel, "save_pretrained", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        export_edit(out, model, shipped_tokenizer, make_edit(cm, [ComponentRef(*REMOVED["llama"][0])]), force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == old
    # The adapter wrapping was undone although saving failed.
    assert all(a is b for a, b in zip(modules, model.modules())) and len(modules) == len(list(model.modules()))
    assert all(torch.equal(before[k], v) for k, v in _weights(model).items())


def test_rank_pattern_keys_match_exactly(tmp_path):
    """Layer 1 and layer 11 get their own ranks; a loose pattern would give one of them the other's."""
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=12,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    cm = ComponentModel(model, resolve_targets(model, {"model.layers.*.self_attn.q_proj": C}))
    removed = [ComponentRef("model.layers.1.self_attn.q_proj", i) for i in (0, 1, 2)]
    removed += [ComponentRef("model.layers.11.self_attn.q_proj", 4)]
    with warnings.catch_warnings(record=True) as record:  # PEFT warns when a pattern key matches no module
        warnings.simplefilter("always")
        save_lora_adapter(model, removal_factors(cm, removed), tmp_path / "adapter", "")
    assert not [w for w in record if "did not match" in str(w.message)]
    tensors = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    shapes = {k: tuple(v.shape) for k, v in tensors.items() if "lora_A" in k}
    assert shapes == {
        "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight": (3, 16),
        "base_model.model.model.layers.11.self_attn.q_proj.lora_A.weight": (1, 16),
    }
