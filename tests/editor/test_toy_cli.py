"""`editor decompose --model toy:NAME`: every method (vpd, spd, apd) on a toy model from the same command."""

from __future__ import annotations

import json

import pytest

from tests.editor.clitools import assert_user_error, invoke


def test_unknown_toy_model_is_a_user_error(tmp_path):
    result = invoke("decompose", "--model", "toy:nope", "--recipe", "tms-5-2-apd", "--out", tmp_path / "out")
    assert_user_error(result, "unknown toy model 'nope'", "tms-5-2")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["apd", "spd"])
def test_toy_decomposition_through_the_cli(tmp_path, method):
    out = tmp_path / method
    sets = ["--set", "steps=20", "--set", "apd.warmup_steps=20"] if method == "apd" else ["--set", "steps=20", "--set", "eval.every=10"]
    result = invoke("decompose", "--model", "toy:tms-5-2", "--recipe", f"tms-5-2-{method}", "--out", out, *sets)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "decomposition.json").read_text())
    assert manifest["config"]["method"] == method
    assert (out / ".editor-output").is_file()  # every method records its files (what --force may replace)
