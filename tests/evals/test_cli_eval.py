"""`editor eval` end to end on a tiny model: every part, base + PEFT adapter, and bad input."""

from __future__ import annotations

import json

import pytest

from editor.paths import HELDOUT
from lmkit.texts import load_texts
from tests.editor.clitools import invoke


def test_eval_everything_writes_report(tiny_dir, tmp_path):
    out = tmp_path / "r" / "report.json"
    result = invoke(
        "eval",
        "--model",
        tiny_dir,
        "--limit",
        "4",
        "--batch-size",
        "8",
        "--toxicity",
        "--n-prompts",
        "2",
        "-k",
        "2",
        "--max-new-tokens",
        "4",
        "--robustness",
        "--oracle",
        tiny_dir,
        "--relearn-examples",
        "4",
        "--relearn-steps",
        "2",
        "--quant-bits",
        "4",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["capability"]["tasks"]) == {"editor_wikitext", "editor_forget", "editor_retain", "editor_toxic_choice"}
    assert report["toxicity"]["scorer"] == "editor-token-logreg" and report["toxicity"]["prompts"] == 2
    rel = report["robustness"]["relearn"]
    assert [p["step"] for p in rel["curves"]["model"]] == [0, 2] and "oracle" in rel["curves"]
    assert [r["bits"] for r in report["robustness"]["quantization"]["rows"]] == [32, 4]
    md = out.with_suffix(".md").read_text()
    assert "Expected max toxicity".lower() in md.lower() and "report-relearn.png" in md
    for png in ("report-relearn.png", "report-quantization.png"):
        assert (out.parent / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["report-quantization.png", "report-relearn.png", "report.json", "report.md"]


def test_eval_base_plus_adapter_matches_merged(tiny_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    from editor.model_io import load_model
    from lmkit.nll import mean_nll

    base, tok = load_model(str(tiny_dir))
    peft_model = get_peft_model(base, LoraConfig(r=2, lora_alpha=2, target_modules=["o_proj", "down_proj"], init_lora_weights=False))
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    with torch.no_grad():
        texts = load_texts(HELDOUT["toxic"]).texts[:4]
        merged_nll = mean_nll(peft_model.merge_and_unload(), tok, texts).mean
    base_nll = mean_nll(load_model(str(tiny_dir))[0], tok, texts).mean
    assert abs(merged_nll - base_nll) > 1e-4  # the adapter does change the model
    result = invoke("eval", "--model", tiny_dir, "--adapter", adapter, "--tasks", "editor_forget", "--limit", "4", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"]["adapter"] == str(adapter)
    assert report["nll"]["forget"]["nll"] == pytest.approx(merged_nll, abs=1e-5)
    assert set(report["capability"]["tasks"]) == {"editor_forget"}
    # an adapter-only directory as --model is the same thing
    again = invoke("eval", "--model", adapter, "--tasks", "none", "--limit", "4", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["nll"]["forget"]["nll"] == pytest.approx(merged_nll, abs=1e-5)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--forget", "missing.jsonl"], "no such file"),
        (["--tasks", "editor_wikitxt"], "did you mean editor_wikitext"),
        (["--limit", "-1"], "Invalid value for '--limit': Input should be greater than or equal to 0"),
        (["--robustness", "--relearn-examples", "5000"], "needs more than --relearn-examples"),
        (["--adapter", "."], "not a PEFT adapter directory"),
    ],
)
def test_bad_input_is_exit_2(tiny_dir, tmp_path, args, message):
    out = tmp_path / "report.json"
    result = invoke("eval", "--model", tiny_dir, "--limit", "2", "--out", out, *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output and result.stdout == ""
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_eval_forget_output_dir_uses_the_merged_model(tiny_dir, tmp_path):
    """An `editor forget` output holds the merged model at its root and the adapter in adapter/."""
    import shutil

    out = tmp_path / "edited"
    shutil.copytree(tiny_dir, out)
    (out / "adapter").mkdir()
    (out / "adapter" / "adapter_config.json").write_text("{}")
    result = invoke("eval", "--model", out, "--tasks", "none", "--limit", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"]["path"] == str(out.resolve()) and "merged model" in report["model"]["note"]
    assert "capability" not in report and report["nll"]["forget"]["documents"] == 2
