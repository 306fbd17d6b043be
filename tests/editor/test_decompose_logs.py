"""A decomposition's curves outside metrics.jsonl: metrics.png redrawn at every evaluation, TensorBoard events
with `--log tensorboard` (when the optional package is installed), and `--log` errors through the CLI."""

from __future__ import annotations

import hashlib
import importlib.util
import json

import pytest

from decompose.layout import partial_dir
from tests.editor.clitools import RECIPE, assert_user_error, invoke

HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None


def test_metrics_png_at_every_evaluation(workspace, tmp_path):
    """The API run (what `editor decompose` calls): at each evaluation metrics.png is there and has changed."""
    from editor import api

    model, tok = api.load_model(workspace.model)
    out = tmp_path / "dec"
    seen: list[str] = []

    def on_eval(metrics: dict) -> None:
        seen.append(hashlib.sha256((partial_dir(out) / "metrics.png").read_bytes()).hexdigest())

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    api.decompose(model, tok, workspace.data, out=out, recipe=recipe, overrides=["steps=20", "eval.every=10", "checkpoint_every=100"], on_eval=on_eval)
    assert len(seen) == 2 and seen[0] != seen[1]
    assert (out / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert hashlib.sha256((out / "metrics.png").read_bytes()).hexdigest() == seen[-1]
    assert not (out / "tensorboard").exists()


def test_cli_decomposition_has_metrics_png(workspace):
    assert (workspace.dec / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_log_unknown_logger(workspace, tmp_path):
    result = invoke("decompose", "--model", workspace.model, "--data", workspace.data, "--recipe", workspace.recipe, "--out", tmp_path / "d", "--log", "wandb")
    assert_user_error(result, "--log wandb: unknown logger; choose one of tensorboard")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(HAS_TENSORBOARD, reason="tensorboard is installed")
def test_log_tensorboard_without_the_package(workspace, tmp_path):
    result = invoke(
        "decompose", "--model", workspace.model, "--data", workspace.data, "--recipe", workspace.recipe, "--out", tmp_path / "d", "--log", "tensorboard"
    )
    assert_user_error(result, "--log tensorboard: the tensorboard package is not installed (pip install tensorboard)")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not HAS_TENSORBOARD, reason="the optional tensorboard package is not installed")
def test_log_tensorboard_writes_every_metric(workspace, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "d"
    args = ["--model", workspace.model, "--data", workspace.data, "--recipe", workspace.recipe, "--out", out, "--log", "tensorboard"]
    result = invoke("decompose", *args, "--set", "steps=50", "--set", "eval.every=25")
    assert result.exit_code == 0, result.output
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    expected = {f"{r['kind']}/{k}" for r in records for k, v in r.items() if k not in {"step", "kind"} and isinstance(v, (int, float))}
    assert {r["kind"] for r in records} == {"train", "eval"}
    assert set(events.Tags()["scalars"]) == expected
    evals = [r for r in records if r["kind"] == "eval"]
    board = events.Scalars("eval/ce/ci_masked")
    assert [e.step for e in board] == [r["step"] for r in evals]
    assert [e.value for e in board] == pytest.approx([r["ce/ci_masked"] for r in evals], rel=1e-6)
