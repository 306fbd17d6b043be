"""The bundled tasks as researchers run them: lm-eval's own `simple_evaluate` / `lm_eval` CLI with
`--include_path`, on the self-locating tasks in evals/tasks and on the files `editor eval --write-tasks` writes.
Every number is checked against `editor eval`'s own in-process run on the same documents."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from editor.paths import HELDOUT
from evals.harness import TEMPLATES, choice_pairs, run_lm_eval
from lmkit.texts import load_texts
from tests.editor.clitools import invoke

LIMIT = 3


def plain_lm_eval(model, tok, tasks: list[str], include_path, metadata: dict | None = None) -> dict:
    """lm-eval's documented entry point: TaskManager(include_path) + simple_evaluate, nothing of editor's."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(include_path), include_defaults=False, metadata=metadata)
    r = simple_evaluate(model=HFLM(pretrained=model, tokenizer=tok, batch_size=8), tasks=tasks, task_manager=tm, limit=LIMIT, bootstrap_iters=0)
    assert r is not None
    return {t: {k.split(",")[0]: v for k, v in m.items() if "," in k} for t, m in r["results"].items()}


def editor_run(model, tok, tmp_path, docs: dict) -> dict:
    return run_lm_eval(model, tok, list(docs), workdir=tmp_path / "editor-run", docs=docs, limit=LIMIT, batch_size=8)["tasks"]


def assert_same(plain: dict, ours: dict) -> None:
    assert set(plain) == set(ours)
    for task, metrics in ours.items():
        for name, value in metrics.items():
            if isinstance(value, float) and not name.endswith("_stderr"):
                assert plain[task][name] == pytest.approx(value, rel=1e-5), (task, name)


def test_bundled_tasks_locate_their_data(tiny, tmp_path):
    """`--include_path evals/tasks` as shipped: the held-out data that `editor eval` uses by default."""
    model, tok = tiny
    plain = plain_lm_eval(model, tok, ["editor_forget", "editor_toxic_choice"], TEMPLATES)
    toxic, benign = load_texts(HELDOUT["toxic"]).texts, load_texts(HELDOUT["benign"]).texts
    ours = editor_run(model, tok, tmp_path, {"editor_forget": toxic, "editor_toxic_choice": choice_pairs(toxic, benign)})
    assert_same(plain, ours)
    assert plain["editor_forget"]["bits_per_byte"] > 0


def test_bundled_tasks_take_other_data_through_metadata(tiny, tmp_path):
    """`lm_eval --metadata '{"retain_data": ...}'`: any format lmkit reads, here Parquet with another column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    model, tok = tiny
    docs = ["the first retained document", "a second one, longer than the first", "and a third"]
    pq.write_table(pa.table({"body": docs}), tmp_path / "retain.parquet")
    plain = plain_lm_eval(model, tok, ["editor_retain"], TEMPLATES, metadata={"retain_data": str(tmp_path / "retain.parquet"), "text_field": "body"})
    assert_same(plain, editor_run(model, tok, tmp_path, {"editor_retain": docs}))


def test_write_tasks_then_plain_lm_eval(tiny, tmp_path):
    """`editor eval --forget F.csv --write-tasks DIR`, then lm-eval on DIR alone."""
    model, tok = tiny
    forget = ["you are the worst", "go away, nobody wants you", "what a stupid idea"]
    (tmp_path / "forget.csv").write_text("text\n" + "\n".join(f'"{t}"' for t in forget) + "\n", encoding="utf-8")
    out = tmp_path / "tasks"
    result = invoke("eval", "--forget", tmp_path / "forget.csv", "--write-tasks", out, "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["tasks_dir"] == str(out) and printed["documents"]["editor_forget"] == 3
    assert sorted(p.name for p in out.glob("*.yaml")) == ["editor_forget.yaml", "editor_retain.yaml", "editor_toxic_choice.yaml", "editor_wikitext.yaml"]
    assert str(out.resolve() / "data" / "editor_forget.jsonl") in (out / "editor_forget.yaml").read_text()  # the final folder, not the temporary one
    assert not list(tmp_path.glob("tasks.tmp-*"))
    plain = plain_lm_eval(model, tok, ["editor_forget", "editor_wikitext"], out)
    assert_same(plain, editor_run(model, tok, tmp_path, {"editor_forget": forget, "editor_wikitext": load_texts(HELDOUT["wikitext"]).texts}))

    again = invoke("eval", "--forget", tmp_path / "forget.csv", "--write-tasks", out)
    assert again.exit_code == 2 and "--write-tasks" in again.stderr and "--force" in again.stderr


@pytest.mark.slow
def test_lm_eval_command_on_an_exported_model(tiny_dir, tiny, tmp_path):
    """The `lm_eval` console script itself, on a model directory, with the shipped tasks folder (about 30 s)."""
    exe = os.path.join(os.path.dirname(sys.executable), "lm_eval")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cmd = [exe, "--model", "hf", "--model_args", f"pretrained={tiny_dir}", "--tasks", "editor_forget,editor_toxic_choice"]
    cmd += ["--include_path", str(TEMPLATES), "--limit", str(LIMIT), "--output_path", str(tmp_path / "results")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (results,) = (tmp_path / "results").rglob("results_*.json")
    got = json.loads(results.read_text())["results"]
    model, tok = tiny
    toxic, benign = load_texts(HELDOUT["toxic"]).texts, load_texts(HELDOUT["benign"]).texts
    ours = editor_run(model, tok, tmp_path, {"editor_forget": toxic, "editor_toxic_choice": choice_pairs(toxic, benign)})
    assert got["editor_forget"]["bits_per_byte,none"] == pytest.approx(ours["editor_forget"]["bits_per_byte"], rel=1e-5)
    assert got["editor_toxic_choice"]["acc,none"] == pytest.approx(ours["editor_toxic_choice"]["acc"])
