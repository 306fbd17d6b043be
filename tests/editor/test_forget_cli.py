"""`editor forget` and `editor components` on the session's tiny decomposition: the exported edit, its
report, dry runs, --force, and user errors (exit 2, one message, nothing written)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from editor.paths import TRAIN
from tests.editor.clitools import (
    CONTEXT,
    Workspace,
    assert_clean,
    assert_user_error,
    flat,
    invoke,
    jsonl_texts,
    save_tiny_llama,
    tree,
    write_jsonl,
)

REMOVED_KEYS = {"module", "index", "change", "norm", "stats", "fires_on", "promotes"}


def forget(
    ws: Workspace, out: Path, *extra: str | Path, dataset: Path | None = None, retain: Path | None = None, model: Path | None = None, method: str = "vpd-remove"
):
    """`editor forget` on the workspace; the removal kind unless `method` says otherwise (its prefix curve is easy to check)."""
    return invoke(
        "forget",
        "--method",
        method,
        "--model",
        model or ws.model,
        "--decomposition",
        ws.dec,
        "--dataset",
        dataset or ws.toxic,
        "--retain",
        retain or ws.retain,
        "--out",
        out,
        *extra,
    )


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def small(workspace: Workspace, tmp_path_factory) -> tuple[Path, Path]:
    """A 40-document forget set and a 40-document retain set, for runs whose result is not the point."""
    root = tmp_path_factory.mktemp("small")
    retain = [json.loads(line)["text"] for line in workspace.retain.read_text().splitlines()]
    return (
        write_jsonl(root / "forget.jsonl", jsonl_texts(TRAIN["toxic"], 40)),
        write_jsonl(root / "retain.jsonl", retain[:20] + retain[-20:]),
    )


# --- the happy path: one run, several checks ---------------------------------------------------------


@dataclass(frozen=True)
class Forgotten:
    out: Path
    printed: dict  # the --json output
    manifest: dict  # edit.json


@pytest.fixture(scope="module")
def forgotten(workspace: Workspace, tmp_path_factory) -> Forgotten:
    out = tmp_path_factory.mktemp("forget") / "edited"
    result = forget(workspace, out, "--set", "max_components=3", "--json")
    assert result.exit_code == 0, result.output
    assert_clean(result)
    return Forgotten(out, json.loads(result.stdout), json.loads((out / "edit.json").read_text()))


def test_forget_writes_the_edit_and_its_report(forgotten: Forgotten, workspace: Workspace):
    out, m = forgotten.out, forgotten.manifest
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "config.json", "adapter", "edit.json", "README.md"}
    assert not list(out.parent.glob("*.tmp-export")) and not list(out.parent.glob("*.old-export"))

    assert len(m["components"]) == 3
    for r in m["components"]:
        assert REMOVED_KEYS <= set(r) and r["change"] == "removed"
        assert r["module"].startswith("model.layers.") and 0 <= r["index"] < 8
        assert r["stats"]["score"] > 0 and r["norm"] > 0
        assert r["stats"]["forget_mean_ci"] > r["stats"]["retain_mean_ci"]
        assert all(isinstance(t, str) for t in r["fires_on"] + r["promotes"]) and len(r["promotes"]) == 8
    # Removed in the order of the relaxed-removal ranking.
    removal = [r["stats"]["removal"] for r in m["components"]]
    assert removal == sorted(removal, reverse=True)
    assert sum(m["components_per_module"].values()) == 3
    assert m["candidates_ranked"] >= 3
    for when in ("before", "after"):
        assert set(m["metrics"][when]) == {"forget_nll", "retain_nll"}
    assert m["settings"]["max_components"] == 3 and m["settings"]["max_retain_kl"] is None
    assert m["data"]["forget"]["documents"] == 200 and m["data"]["retain"]["documents"] == 300
    assert m["data"]["forget"]["source"] == str(workspace.toxic)
    assert (out / m["decomposition"]["path"]).resolve() == workspace.dec.resolve()  # relative to the output, portable
    dec_manifest = json.loads((workspace.dec / "decomposition.json").read_text())
    assert m["model"]["fingerprint_before"] == dec_manifest["model"]["fingerprint"] != m["model"]["fingerprint_after"]
    assert m["search"]["final"]["at"] == 3 == m["search"]["curve"][-1]["at"]
    assert m["search"]["base"]["at"] == 0 and m["search"]["base"]["retain_kl"] == 0

    card = (out / "README.md").read_text()
    assert "3 rank-1 components removed" in card
    for r in m["components"]:  # each removed component is listed with its tokens
        assert f"`{r['module']}` #{r['index']}" in card
    assert str(workspace.model.resolve()) not in card  # no absolute path of this machine
    # A local base model is not a Hub id: it is named in the text (relative to the output), not as base_model.
    assert "base_model" not in card.split("---")[1] and f"`{m['model']['source']}`" in card


def test_json_output_matches_edit_json(forgotten: Forgotten):
    printed = dict(forgotten.printed)
    assert printed.pop("out") == str(forgotten.out)
    assert printed.pop("seconds_total") > 0
    assert printed == forgotten.manifest
    assert printed["components"] == forgotten.manifest["components"]


def test_exported_model_loads_plainly_and_only_removed_matrices_change(forgotten: Forgotten, workspace: Workspace):
    edited = AutoModelForCausalLM.from_pretrained(forgotten.out)
    original = AutoModelForCausalLM.from_pretrained(workspace.model)
    changed = {f"{r['module']}.weight" for r in forgotten.manifest["components"]}
    a, b = _weights(original), _weights(edited)
    assert a.keys() == b.keys()
    assert {k for k in a if not torch.equal(a[k], b[k])} == changed


def test_adapter_merged_onto_the_original_reproduces_the_export(forgotten: Forgotten, workspace: Workspace):
    config = json.loads((forgotten.out / "adapter" / "adapter_config.json").read_text())
    assert set(config["target_modules"]) == {r["module"] for r in forgotten.manifest["components"]}
    base = AutoModelForCausalLM.from_pretrained(workspace.model)
    merged = PeftModel.from_pretrained(base, forgotten.out / "adapter").merge_and_unload()
    exported = _weights(AutoModelForCausalLM.from_pretrained(forgotten.out))
    got = _weights(merged)
    assert got.keys() == exported.keys()
    assert max((got[k] - exported[k]).abs().max().item() for k in got) <= 1e-6


# --- dry run and --force ----------------------------------------------------------------------------


def test_dry_run_writes_nothing(workspace, small, tmp_path):
    out = tmp_path / "edited"
    result = forget(workspace, out, "--set", "max_components=1", "--dry-run", "--json", dataset=small[0], retain=small[1])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["out"] is None and len(printed["components"]) == 1
    assert list(tmp_path.iterdir()) == []


def test_existing_out_needs_force(workspace, small, tmp_path):
    out = tmp_path / "edited"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    before = tree(tmp_path)
    result = forget(workspace, out, "--set", "max_components=1", dataset=small[0], retain=small[1])
    assert_user_error(result, "already exists", "--force")
    assert tree(tmp_path) == before and (out / "keep.txt").read_text() == "old"
    result = forget(workspace, out, "--set", "max_components=1", "--force", dataset=small[0], retain=small[1])
    assert_user_error(result, "not written by editor")  # --force never deletes what editor did not write
    assert tree(tmp_path) == before

    (out / "keep.txt").unlink()
    for _ in range(2):  # into the empty folder, then over that earlier output
        result = forget(workspace, out, "--set", "max_components=1", "--force", dataset=small[0], retain=small[1])
        assert result.exit_code == 0, result.output
        assert result.stdout.strip().splitlines()[-1] == str(out)
    assert len(json.loads((out / "edit.json").read_text())["components"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edited"]


# --- user errors -------------------------------------------------------------------------------------


def test_decomposition_of_another_model(workspace, small, tmp_path):
    from decompose.targets import default_patterns, fingerprint, resolve_targets

    other = save_tiny_llama(tmp_path / "other", seed=1)
    model = AutoModelForCausalLM.from_pretrained(other)
    got = fingerprint([t for t, _ in resolve_targets(model, dict.fromkeys(default_patterns(model), 8))])
    want = json.loads((workspace.dec / "decomposition.json").read_text())["model"]["fingerprint"]
    assert got != want
    out = tmp_path / "edited"
    result = forget(workspace, out, "--set", "max_components=1", model=other, dataset=small[0], retain=small[1])
    assert_user_error(result, f"was trained on model {want[:16]}", f"but this model is {got[:16]}")
    assert not out.exists()
    result = invoke("components", "--model", other, "--decomposition", workspace.dec, "--dataset", small[0])
    assert_user_error(result, f"was trained on model {want[:16]}", f"but this model is {got[:16]}")


def test_empty_forget_file(workspace, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = forget(workspace, tmp_path / "edited", dataset=empty)
    assert_user_error(result, "the dataset is empty")
    assert list(tmp_path.iterdir()) == [empty]


def test_both_budget_options(workspace, tmp_path):
    result = forget(workspace, tmp_path / "edited", "--strength", "0.01", "--set", "max_components=2")
    assert_user_error(result, "either max_retain_kl", "or max_components")
    assert list(tmp_path.iterdir()) == []


def test_documents_longer_than_the_context_are_truncated_with_a_warning(workspace, small, tmp_path):
    tweets = jsonl_texts(TRAIN["toxic"], 400)
    long_docs, doc = [], []
    for t in tweets:  # ~200 words each, far more than the 64-token context
        doc.append(t)
        if sum(len(x.split()) for x in doc) >= 200:
            long_docs.append(" ".join(doc))
            doc = []
        if len(long_docs) == 10:
            break
    data = write_jsonl(tmp_path / "long.jsonl", long_docs)
    result = forget(workspace, tmp_path / "edited", "--set", "max_components=1", "--dry-run", "--json", dataset=data, retain=small[1])
    assert result.exit_code == 0, result.output
    assert_clean(result)
    assert f"10 forget documents were longer than the {CONTEXT}-token context and were truncated" in flat(result.stderr)
    printed = json.loads(result.stdout)
    assert printed["data"]["forget"]["truncated"] == 10
    assert any("truncated" in w for w in printed["warnings"])
    assert list(tmp_path.iterdir()) == [data]


def test_retain_set_equal_to_forget_set(workspace, small, tmp_path):
    out = tmp_path / "edited"
    result = forget(workspace, out, "--set", "max_components=1", dataset=small[0], retain=small[0])
    assert result.exit_code in (0, 2), result.output
    assert_clean(result)
    assert "equals the forget set" in flat(result.stderr)  # the warning, or the reason in the error
    if result.exit_code == 2:
        assert_user_error(result, "no component is more important on the forget set")
        assert not out.exists()


def test_budget_no_component_satisfies(workspace, tmp_path_factory, tmp_path):
    # Every candidate is tried before giving up: 12 short documents a side keep that quick.
    data = tmp_path_factory.mktemp("budget")
    forget_set = write_jsonl(data / "forget.jsonl", jsonl_texts(TRAIN["toxic"], 12))
    retain_set = write_jsonl(data / "retain.jsonl", jsonl_texts(TRAIN["benign"], 12))
    out = tmp_path / "edited"
    result = forget(workspace, out, "--strength", "1e-12", dataset=forget_set, retain=retain_set)
    assert_user_error(result, "no removal satisfies the retain budget (max_retain_kl 1e-12)", "--set max_components=K")
    assert list(tmp_path.iterdir()) == []


# --- editor components -------------------------------------------------------------------------------


def test_components_lists_the_most_active(workspace):
    result = invoke("components", "--model", workspace.model, "--decomposition", workspace.dec, "--dataset", workspace.toxic, "--top", "5", "--json")
    assert result.exit_code == 0, result.output
    assert_clean(result)
    printed = json.loads(result.stdout)
    assert printed["dataset"] == str(workspace.toxic) and printed["tokens"] > 0
    rows = printed["components"]
    assert len(rows) == 5
    modules = {m["name"] for m in json.loads((workspace.dec / "decomposition.json").read_text())["modules"]}
    for r in rows:
        assert set(r) == {"module", "index", "mean_ci", "density", "fires_on", "promotes"}
        assert r["module"] in modules and 0 <= r["index"] < 8
        assert 0 < r["mean_ci"] <= 1 and 0 < r["density"] <= 1
        assert isinstance(r["fires_on"], list) and isinstance(r["promotes"], list)
        assert r["fires_on"] and len(r["promotes"]) == 8
        assert all(isinstance(t, str) for t in r["fires_on"] + r["promotes"])
    assert [r["mean_ci"] for r in rows] == sorted((r["mean_ci"] for r in rows), reverse=True)
    assert len({(r["module"], r["index"]) for r in rows}) == 5


def test_components_against_other_data_ranks_by_specificity(workspace):
    """--against: the components used more on --dataset than on the other data, most specific first, with the
    same scores `editor forget` ranks its candidates by."""
    from editor.select import specificity

    args = ["components", "--model", workspace.model, "--decomposition", workspace.dec, "--dataset", workspace.toxic, "--top", "6"]
    result = invoke(*args, "--against", workspace.retain, "--json")
    assert result.exit_code == 0, result.output
    assert_clean(result)
    printed = json.loads(result.stdout)
    assert printed["against"] == str(workspace.retain)
    rows = printed["components"]
    assert rows and all(r["mean_ci"] > r["against_mean_ci"] for r in rows)
    assert all(r["specificity"] == pytest.approx(specificity(r["mean_ci"], r["against_mean_ci"], 1e-4), rel=1e-5) for r in rows)
    assert [r["specificity"] for r in rows] == sorted((r["specificity"] for r in rows), reverse=True)
    table = invoke(*args, "--against", workspace.retain)
    assert table.exit_code == 0 and "specificity" in table.stdout and "most specific against" in " ".join(table.stdout.split())


def test_components_table_goes_to_stdout_whole_when_piped(workspace):
    """Not a terminal (a pipe, a file): a markdown table on stdout with every module name in full."""
    result = invoke("components", "--model", workspace.model, "--decomposition", workspace.dec, "--dataset", workspace.toxic, "--top", "4")
    assert result.exit_code == 0, result.output
    assert_clean(result)
    rows = [line for line in result.stdout.splitlines() if line.startswith("| model.layers.")]
    assert len(rows) == 4
    modules = {m["name"] for m in json.loads((workspace.dec / "decomposition.json").read_text())["modules"]}
    assert all(row.split(" | ")[0].removeprefix("| ") in modules for row in rows)  # never cut to "model.layers.1…"
    assert "model.layers." not in result.stderr
