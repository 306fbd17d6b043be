"""`editor decompose`: what a finished run writes, user errors (exit 2, nothing written), and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from decompose.run import partial_dir
from tests.editor.clitools import RECIPE, Workspace, assert_user_error, invoke, tree, write_jsonl


def decompose(ws: Workspace, out: Path, *extra: str | Path, model: Path | None = None, data: Path | None = None, recipe: str | Path | None = None):
    return invoke("decompose", "--model", model or ws.model, "--data", data or ws.data, "--recipe", recipe or ws.recipe, "--out", out, *extra)


def test_decompose_writes_a_complete_decomposition(workspace: Workspace):
    dec = workspace.dec
    assert workspace.stdout == f"{dec}\n"
    assert (dec / "components.safetensors").is_file()
    assert not partial_dir(dec).exists()
    assert not list(dec.parent.glob("*.partial"))

    manifest = json.loads((dec / "decomposition.json").read_text())
    assert manifest["format"] == "editor-vpd/1" and manifest["name"] == "test-tiny"
    assert manifest["model"]["source"] == str(workspace.model)
    assert manifest["model"]["model_type"] == "llama"
    assert len(manifest["model"]["fingerprint"]) == 64
    modules = manifest["modules"]
    assert len(modules) == 14  # 2 layers x (q, k, v, o, gate, up, down)
    assert all(m["C"] == 8 for m in modules)
    assert {m["name"].split(".")[-1] for m in modules} == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    metrics = manifest["metrics"]
    for key in ("kl/pgd", "l0/mean_per_matrix", "alive/total", "ce/ci_masked", "ce/target"):
        assert key in metrics
    assert 0 <= metrics["l0/mean_per_matrix"] <= 8
    assert 0 <= metrics["alive/total"] <= 14 * 8
    assert manifest["steps"] == {"warmup": 5, "main": 20}
    assert manifest["data"]["documents"] == 300 and manifest["data"]["tokens"] > 32

    tensors = load_file(dec / "components.safetensors")
    for m in modules:
        assert tensors[f"V.{m['name']}"].shape == (m["d_in"], 8)
        assert tensors[f"U.{m['name']}"].shape == (8, m["d_out"])
    assert any(k.startswith("ci_fn.") for k in tensors)

    records = [json.loads(line) for line in (dec / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [15, 25]  # every 10 main steps after the 5 warmup steps, and at the end
    assert evals[-1] == {"step": 25, "kind": "eval", **metrics}


# --- user errors -------------------------------------------------------------------------------------


def _recipe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_unknown_recipe_name(workspace, tmp_path):
    result = decompose(workspace, tmp_path / "out", recipe="no-such-recipe")
    assert_user_error(result, "unknown decompose recipe 'no-such-recipe'", "tiny-toxic")
    assert list(tmp_path.iterdir()) == []


def test_recipe_with_unknown_key(workspace, tmp_path):
    recipe = _recipe(tmp_path, RECIPE + "bogus_key: 3\n")
    result = decompose(workspace, tmp_path / "out", recipe=recipe)
    assert_user_error(result, "invalid recipe", "bogus_key")
    assert list(tmp_path.iterdir()) == [recipe]


def test_unknown_override_key(workspace, tmp_path):
    result = decompose(workspace, tmp_path / "out", "--set", "eval.nope=1")
    assert_user_error(result, "eval.nope")
    assert list(tmp_path.iterdir()) == []


def test_targets_pattern_matching_nothing(workspace, tmp_path):
    recipe = _recipe(tmp_path, RECIPE.replace("default_C: 8", 'targets: {"model.layers.*.self_attn.q_prj": 8}'))
    result = decompose(workspace, tmp_path / "out", recipe=recipe)
    assert_user_error(result, "'model.layers.*.self_attn.q_prj' matches no module", "near matches", "model.layers.0.self_attn.q_proj")
    assert list(tmp_path.iterdir()) == [recipe]


def test_missing_data_file(workspace, tmp_path):
    result = decompose(workspace, tmp_path / "out", data=tmp_path / "nope.jsonl")
    assert_user_error(result, "no such file", "nope.jsonl")
    assert list(tmp_path.iterdir()) == []


def test_empty_data_file(workspace, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = decompose(workspace, tmp_path / "out", data=empty)
    assert_user_error(result, "the dataset is empty")
    assert list(tmp_path.iterdir()) == [empty]


def test_data_shorter_than_one_sequence(workspace, tmp_path):
    data = write_jsonl(tmp_path / "short.jsonl", ["a few words", "and a few more"])
    result = decompose(workspace, tmp_path / "out", data=data)
    assert_user_error(result, "fewer than one sequence of 32")
    assert list(tmp_path.iterdir()) == [data]


def test_directory_that_is_not_a_model(workspace, tmp_path):
    not_model = tmp_path / "not-a-model"
    not_model.mkdir()
    result = decompose(workspace, tmp_path / "out", model=not_model)
    assert_user_error(result, "not a Hugging Face model directory")
    (not_model / "config.json").write_text("{not json")
    result = decompose(workspace, tmp_path / "out", model=not_model)
    assert_user_error(result, "could not load model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-model"]


def test_existing_out(workspace):
    before = tree(workspace.dec)
    result = decompose(workspace, workspace.dec)
    assert_user_error(result, "already exists")
    assert tree(workspace.dec) == before
    assert not partial_dir(workspace.dec).exists()


# --- interrupted runs ----------------------------------------------------------------------------------


class Interrupt(Exception):
    pass


def test_resume_equals_an_uninterrupted_run(workspace: Workspace, tmp_path):
    from decompose.config import DecomposeConfig
    from decompose.data import token_stream
    from decompose.run import run_decomposition
    from editor.model_io import load_model
    from editor.recipe import load_recipe
    from lmkit.texts import load_many

    # What `editor decompose` does, with a step callback that stops the run after step 13 (checkpoint at 10).
    cfg = load_recipe(DecomposeConfig, str(workspace.recipe), "decompose")
    lm, tok = load_model(str(workspace.model))
    stream = token_stream(tok, load_many([str(workspace.data)]).texts)
    out = tmp_path / "dec"

    def stop(step: int, total: int, metrics: dict) -> None:
        if step == 13:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_decomposition(lm, stream, cfg, out, model_source=str(workspace.model), on_step=stop)
    torch.set_num_threads(1)
    work = partial_dir(out)
    assert not out.exists()
    assert [p.name for p in (work / "checkpoints").iterdir()] == ["step_00000010"]

    # Without --resume the interrupted run is left alone.
    before = tree(work)
    result = decompose(workspace, out)
    assert_user_error(result, "interrupted run", "--resume")
    assert tree(work) == before and not out.exists()

    result = decompose(workspace, out, "--resume")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{out}\n"
    assert not work.exists()
    resumed, reference = load_file(out / "components.safetensors"), load_file(workspace.dec / "components.safetensors")
    assert resumed.keys() == reference.keys()
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)
    assert (out / "metrics.jsonl").read_text() == (workspace.dec / "metrics.jsonl").read_text()
    manifest, ref_manifest = (json.loads((d / "decomposition.json").read_text()) for d in (out, workspace.dec))
    assert manifest["metrics"] == ref_manifest["metrics"]
    assert manifest["model"] == ref_manifest["model"]
