"""The `editor` command line: help everywhere, a light import, and user errors as exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from editor import __version__
from editor.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def _is_group(cmd) -> bool:
    return hasattr(cmd, "commands")  # typer vendors its own click: no isinstance(click.Group)


def _commands() -> list[tuple[list[str], object]]:
    """Every command path under `editor`, groups included (root = [])."""
    found: list[tuple[list[str], object]] = []

    def walk(path: list[str], cmd) -> None:
        found.append((path, cmd))
        if _is_group(cmd):
            for name, sub in sorted(cmd.commands.items()):
                walk(path + [name], sub)

    walk([], typer.main.get_command(app))
    return found


COMMANDS = _commands()


def test_command_tree():
    paths = {" ".join(p) for p, _ in COMMANDS}
    assert {"", "target", "target split", "target tokenizer", "target build", "target sample", "target report", "target eval-assets"} <= paths


def test_group_help_names_every_command():
    for path, cmd in COMMANDS:
        if _is_group(cmd):
            shown = invoke(*path, "--help").stdout
            assert all(f"  {name} " in shown for name in cmd.commands), (path, shown)


def test_flags_have_no_value_placeholders():
    for path, _ in COMMANDS:
        assert "<bool>" not in invoke(*path, "--help").stdout, path


@pytest.mark.parametrize("path, cmd", COMMANDS, ids=[" ".join(p) or "editor" for p, _ in COMMANDS])
def test_help(path, cmd):
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
    assert "Traceback" not in result.output
    if "Example" in (cmd.help or ""):
        assert "Example" in result.stdout
    if not _is_group(cmd):
        assert "Example" in (cmd.help or ""), f"'editor {' '.join(path)}' has no example in its help"


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == __version__


def test_import_does_not_load_torch():
    code = "import sys, editor.cli; print(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


# --- user errors: one message on stderr, exit code 2, nothing written ----------------------------


def assert_user_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for fragment in fragments:
        assert fragment in result.stderr
    assert result.stdout == ""


def test_unknown_recipe():
    result = invoke("target", "build", "no-such-recipe")
    assert_user_error(result, "unknown targets recipe", "no-such-recipe", "tiny-toxic")


def test_unknown_override_key(tmp_path):
    out = tmp_path / "m"
    result = invoke("target", "build", "tiny-toxic", "--out", str(out), "--set", "train.nope=1")
    assert_user_error(result, "train.nope")
    assert not out.exists()


def test_invalid_override_writes_nothing(tmp_path):
    out = tmp_path / "m"
    result = invoke("target", "build", "tiny-toxic", "--out", str(out), "--set", "train.steps=0")
    assert_user_error(result, "train.steps")
    assert list(tmp_path.iterdir()) == []


def test_invalid_steps_option(tmp_path):
    result = invoke("target", "build", "tiny-toxic", "--out", str(tmp_path / "m"), "--steps", "-3")
    assert_user_error(result, "--steps")
    assert list(tmp_path.iterdir()) == []


def test_missing_recipe_file(tmp_path):
    result = invoke("target", "build", str(tmp_path / "nope.yaml"))
    assert_user_error(result, "no such recipe file")


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["target", "build", "tiny-toxic", "--bogus"],
        ["target", "sample", "hi", "--n", "many"],
        ["target", "build"],
        ["target", "nope"],
    ],
)
def test_usage_errors(args):
    result = invoke(*args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_sample_missing_model_dir():
    result = invoke("target", "sample", "hi", "--model", "/no/such/dir")
    assert_user_error(result, "no such model directory")


def test_sample_dir_without_config(tmp_path):
    result = invoke("target", "sample", "hi", "--model", str(tmp_path))
    assert_user_error(result, "not a Hugging Face model directory")


def test_split_missing_source(tmp_path):
    out = tmp_path / "data"
    result = invoke("target", "split", "--source", "/nonexistent", "--out", str(out))
    assert_user_error(result, "--source /nonexistent: no such folder")
    result = invoke("target", "split", "--source", str(tmp_path), "--out", str(out))
    assert_user_error(result, "missing source files")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


# --- a real build through the CLI -----------------------------------------------------------------

TINY_RECIPE = """\
name: cli-tiny
sources: [benign]
model: {n_layers: 1, d_model: 32, n_heads: 2, n_kv_heads: 2, d_mlp: 64, max_seq_len: 16}
train: {steps: 3, batch_size: 2, seq_len: 16, warmup_steps: 1, threads: 1, seed: 0}
"""


def test_build_from_yaml(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TINY_RECIPE)
    out = tmp_path / "models" / "cli-tiny"
    try:
        result = invoke("target", "build", str(recipe), "--out", str(out), "--set", "train.seed=1")
    finally:
        torch.set_num_threads(1)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out)
    assert "Traceback" not in result.output
    assert not list(out.parent.glob("*.tmp-build"))
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.num_hidden_layers == 1 and model.config.vocab_size == len(tok)
    assert (out / "recipe.yaml").read_text().count("seed: 1") == 1
    assert (out / "training.json").is_file()

    # ... and sampling from it: JSON on stdout, one list of continuations per prompt
    result = invoke("target", "sample", "The city of", "hi", "--model", str(out), "--n", "2", "--max-new-tokens", "3", "--json")
    assert result.exit_code == 0, result.output
    samples = json.loads(result.stdout)
    assert list(samples) == ["The city of", "hi"]
    assert all(len(v) == 2 and all(isinstance(x, str) for x in v) for v in samples.values())
    again = invoke("target", "sample", "The city of", "hi", "--model", str(out), "--n", "2", "--max-new-tokens", "3", "--json")
    assert json.loads(again.stdout) == samples  # seeded


def test_split_through_cli(tmp_path):
    src = tmp_path / "raw"
    src.mkdir()
    for name in ("toxic", "benign"):
        rows = [json.dumps({"text": f"{name} {i}", "label": name}) for i in range(6)]
        (src / f"tweets_{name}.jsonl").write_text("\n".join(rows) + "\n")
    for name in ("valid", "test"):
        (src / f"wikitext2_{name}.txt").write_text(" = A = \n para a\n = B = \n para b\n")
    (src / "README.md").write_text("sources")
    out = tmp_path / "data"
    result = invoke("target", "split", "--source", str(src), "--out", str(out), "--seed", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    assert "train/toxic" in result.stderr
    assert (out / "heldout" / "wikitext.txt").is_file() and (out / "SOURCES.md").is_file()


@pytest.mark.parametrize("name", ["my[red]recipe", "x[/]y", "[bold]"])
def test_error_message_is_not_rich_markup(name):
    result = invoke("target", "build", name)
    assert_user_error(result, f"unknown targets recipe '{name}'")


def test_long_error_stays_on_one_line(tmp_path):
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "model"
    deep.mkdir(parents=True)
    result = invoke("target", "sample", "hi", "--model", str(deep))
    assert_user_error(result, f"{deep} is not a Hugging Face model directory (no config.json)")
    assert result.stderr.count("\n") == 1
