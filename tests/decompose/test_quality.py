"""decompose.quality: the quality tables of a finished decomposition, from a real run's final evaluation."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from decompose.config import DecomposeConfig
from decompose.io import read_manifest
from decompose.quality import QUALITY, main, per_matrix_rows, quality_markdown, summary_rows
from decompose.run import run_decomposition
from tests.fixtures import VOCAB, tiny_model


def test_a_finished_run_writes_its_quality_tables(tmp_path):
    cfg = DecomposeConfig(
        default_C=4,
        batch_size=2,
        seq_len=8,
        steps=3,
        losses=[{"kind": "faithfulness", "warmup_steps": 0}, {"kind": "importance_minimality"}, {"kind": "stochastic_recon"}],
        eval={"every": 100, "batches": 1, "pgd_steps": 1},
    )
    stream = torch.randint(0, VOCAB, (300,), generator=torch.Generator().manual_seed(0))
    out = run_decomposition(tiny_model("llama"), stream, cfg, tmp_path / "dec")
    manifest = read_manifest(out)
    text = (out / QUALITY).read_text(encoding="utf-8")
    assert text == quality_markdown(manifest)
    metrics, modules = manifest["metrics"], manifest["modules"]
    rows = dict(summary_rows(metrics, modules))
    assert rows["target CE"] == f"{metrics['ce/target']:.3f}"
    assert rows["alive components"] == f"{metrics['alive/total']:,} of {4 * len(modules):,}"
    gap = (metrics["ce/zero"] - metrics["ce/ci_masked"]) / (metrics["ce/zero"] - metrics["ce/target"])
    assert any(v == f"{gap:.1%}" for k, v in rows.items() if k.startswith("CE gap recovered"))
    columns, layers = per_matrix_rows(metrics, modules)
    assert {c for c in columns} >= {"q_proj", "down_proj"}
    assert [layer for layer, _ in layers] == [str(i) for i in range(len(layers))]
    first = modules[0]["name"]
    cell = f"{metrics[f'alive/{first}']}/4 · {metrics[f'l0/{first}']:.1f}"
    assert layers[0][1][columns.index(first.rsplit(".", 1)[-1])] == cell and cell in text
    printed = subprocess.run([sys.executable, "-m", "decompose.quality", str(out)], capture_output=True, text=True, check=True)
    assert printed.stdout == text


def test_missing_measures_read_as_dashes_and_unlayered_modules_get_their_own_row():
    modules = [{"name": "lm_head", "C": 8}, {"name": "transformer.h.0.attn.c_attn", "C": 4}]
    metrics = {"ce/target": 2.0, "alive/lm_head": 3.0, "l0/lm_head": 1.25}  # a count averaged over ranks is a float
    rows = dict(summary_rows(metrics, modules))
    assert rows["PGD-attack KL"] == "–" and rows["alive components"] == "– of 12"
    assert not any(k.startswith("CE gap") for k in rows)
    columns, layers = per_matrix_rows(metrics, modules)
    assert columns == ["matrix", "c_attn"]
    assert layers == [("lm_head", ["3/8 · 1.2", ""]), ("0", ["", "–/4 · –"])]


@pytest.mark.parametrize("argv", [[], ["a", "b"]])
def test_wrong_arguments_print_usage_and_exit_2(argv, capsys):
    assert main(argv) == 2 and "usage" in capsys.readouterr().err


def test_a_folder_that_is_no_decomposition_is_named_and_exits_2(tmp_path, capsys):
    assert main([str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "nothing") in err and "not a decomposition" in err and "Traceback" not in err
