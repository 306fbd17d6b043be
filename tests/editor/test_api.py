"""The Python API (editor.api) on the session's tiny model and decomposition: the notebook workflow end to end,
the same files as `editor forget`, and the Hub-style model cards of what it saves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from editor import api
from editor.edit import Edit
from editor.errors import EditorError
from tests.editor.clitools import Workspace, invoke

SETTINGS = {"max_components": 3}
ROOT = Path(__file__).resolve().parents[2]


def test_import_does_not_load_torch():
    """`import editor.api` stays light: torch loads with the first call that needs it."""
    code = "import editor.api, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "False"


@pytest.fixture(scope="module")
def loaded(workspace: Workspace):
    return api.load_model(workspace.model)


@pytest.fixture(scope="module")
def edit(workspace: Workspace, loaded) -> Edit:
    model, tok = loaded
    dec = api.load_decomposition(model, workspace.dec)
    return api.forget(model, tok, workspace.toxic, workspace.retain, method="vpd-remove", settings=SETTINGS, decomposition=dec)


def test_forget_returns_the_edit_and_leaves_the_model(workspace, loaded, edit):
    model, _ = loaded
    assert isinstance(edit, Edit) and edit.method == "vpd-remove"
    assert edit.summary == "3 rank-1 components removed" and len(edit.components) == 3
    for c in edit.components:
        assert c.change == "removed" and c.module in edit.factors and len(c.promotes) == 8
    assert edit.metrics["after"]["forget_nll"] > edit.metrics["before"]["forget_nll"]
    assert edit.model["source"] == str(workspace.model.resolve())  # the model's own name_or_path, before saving
    before = {k: v.clone() for k, v in model.state_dict().items()}
    applied = edit.apply(model)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed and all(k.removesuffix(".weight") in edit.factors for k in changed)
    applied.revert()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_save_writes_what_the_cli_writes(workspace, loaded, edit, tmp_path):
    model, tok = loaded
    dec = api.load_decomposition(model, workspace.dec)
    out = api.save(edit, model, tok, tmp_path / "api-out", decomposition=dec, forget=api.load_data(workspace.toxic))
    cli = invoke(
        "forget", "--method", "vpd-remove", "--set", "max_components=3", "--model", workspace.model, "--decomposition", workspace.dec,
        "--dataset", workspace.toxic, "--retain", workspace.retain, "--out", tmp_path / "cli-out",
    )  # fmt: skip
    assert cli.exit_code == 0, cli.output
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(tmp_path / "cli-out")) for p in (tmp_path / "cli-out").rglob("*") if p.is_file())
    ours, theirs = api.load_edit(out), api.load_edit(tmp_path / "cli-out")
    for key in ("method", "summary", "components", "changed_modules", "settings", "metrics", "data"):
        assert ours[key] == theirs[key], key
    assert ours["model"]["source"] == theirs["model"]["source"] == os.path.relpath(workspace.model, out)  # portable: relative to the output
    assert (out / "model.safetensors").read_bytes() == (tmp_path / "cli-out" / "model.safetensors").read_bytes()
    assert (out / "README.md").read_text() == (tmp_path / "cli-out" / "README.md").read_text()
    assert (out / "components" / "index.html").is_file()  # the changed components' pages, linked from the card


def test_cards_are_hub_model_cards(workspace, loaded, edit, tmp_path):
    """Both cards parse with huggingface_hub; a local base model is a relative path in the text, never base_model."""
    from huggingface_hub import ModelCard

    model, tok = loaded
    out = api.save(edit, model, tok, tmp_path / "out")
    card = ModelCard.load(out / "README.md")
    meta = card.data.to_dict()
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-generation"
    assert {"unlearning", "editor", "vpd-remove", "parameter-decomposition"} <= set(meta["tags"])
    assert "base_model" not in meta  # a local folder is not a Hub id
    assert str(workspace.model.resolve()) not in card.content
    adapter = ModelCard.load(out / "adapter" / "README.md")
    assert adapter.data.to_dict()["library_name"] == "peft" and "lora" in adapter.data.tags
    base = json.loads((out / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert (out / "adapter" / base).resolve() == workspace.model.resolve() and f"`{base}`" in adapter.content

    named = api.save(edit, model, tok, tmp_path / "named", base_model="someone/tiny-llama")
    for path, library in ((named / "README.md", "transformers"), (named / "adapter" / "README.md", "peft")):
        meta = ModelCard.load(path).data.to_dict()
        assert meta["base_model"] == "someone/tiny-llama" and meta["library_name"] == library
    tables = [line for line in (named / "README.md").read_text().splitlines() if line.startswith("|")]
    assert tables and all(line.endswith("|") for line in tables)  # markdown table rows


def test_evaluate_in_process(loaded, workspace):
    model, tok = loaded
    report = api.evaluate(model, tok, forget=workspace.toxic, retain=["a retained document", "and another one"], tasks=("editor_forget",), limit=3)
    assert report["capability"]["tasks"]["editor_forget"]["bits_per_byte"] > 0
    assert report["nll"]["retain"]["documents"] == 2 and report["nll"]["forget"]["documents"] == 3
    with pytest.raises(EditorError, match="limit=0"):
        api.evaluate(model, tok, limit=0)


def test_bad_input_is_an_editor_error(loaded, tmp_path):
    model, tok = loaded
    with pytest.raises(EditorError, match="no such file"):
        api.forget(model, tok, tmp_path / "missing.jsonl", method="ga")
    with pytest.raises(EditorError, match="no non-blank documents"):
        api.load_data(["", "  "])
    with pytest.raises(EditorError, match="unknown method 'nope'"):
        api.forget(model, tok, ["a document"], ["another"], method="nope")
    assert api.load_data(["one", " ", "two"]).texts == ["one", "two"]
