"""Slower checks (run with --runslow): lm-eval's own task index, and rebuilding the shipped scorer."""

from __future__ import annotations

import json

import pytest

from editor.paths import EXAMPLES
from tests.editor.clitools import invoke

pytestmark = pytest.mark.slow


def test_standard_task_offline_and_typo(tiny_dir, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = invoke("eval", "--model", tiny_dir, "--tasks", "hellaswag", "--limit", "2")
    assert result.exit_code == 2, result.output
    assert "lm-eval task 'hellaswag' cannot run: editor runs offline" in " ".join(result.output.split())
    typo = invoke("eval", "--model", tiny_dir, "--tasks", "hellaswg", "--limit", "2")
    assert typo.exit_code == 2 and "did you mean hellaswag" in " ".join(typo.output.split()), typo.output


def test_eval_assets_reproduce_the_shipped_scorer(tmp_path):
    result = invoke("target", "eval-assets", "--scorer-out", tmp_path / "scorer", "--prompts-out", tmp_path / "p.jsonl", "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)["heldout_metrics"]
    shipped = json.loads((EXAMPLES / "scorer" / "scorer.json").read_text())["heldout_metrics"]
    assert got["accuracy"] == pytest.approx(shipped["accuracy"], abs=0.01)
    assert (tmp_path / "p.jsonl").read_text() == (EXAMPLES / "prompts" / "tweets.jsonl").read_text()
