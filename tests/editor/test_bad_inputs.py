"""Bad input across every command: exit code 2, one line naming what the user typed, no traceback, and
nothing of the user's touched (the folder's files and their times are the same before and after).

Every case runs in a folder of prepared bad files (`bad`), with relative paths so the message can be
checked for exactly what was typed. Cases marked LIGHT must fail before torch, transformers or lm-eval
are imported (that is what makes the error appear in well under a second); `test_light_cases_fail_before_heavy_imports`
runs them in a fresh process each (forked from one that has loaded only the CLI) to check it.
"""

from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmkit.files import write_record
from tests.editor.clitools import invoke, tree

ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0
LIGHT, HEAVY = True, False  # fails before the heavy imports, or only after them (settings classes live beside torch code)


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Path:
    """A folder of inputs a user might pass by mistake, one of each kind."""
    root = tmp_path_factory.mktemp("bad")
    (root / "good.jsonl").write_text('{"text": "a perfectly fine document"}\n{"text": "and another one"}\n', encoding="utf-8")
    (root / "bom.jsonl").write_bytes(codecs.BOM_UTF8 + b'{"text": "valid, with a byte-order mark"}\n')
    (root / "bin.jsonl").write_bytes(b'{"text": "x"}\n\x00\x01\x02binary')
    (root / "latin1.jsonl").write_bytes('{"text": "café"}\n'.encode("latin-1"))
    (root / "latin1.txt").write_bytes("une ligne\nune autre déjà\n".encode("latin-1"))
    (root / "malformed.jsonl").write_text('{"text": "fine"}\n{"text": "cut\n', encoding="utf-8")
    (root / "array.jsonl").write_text('["text", "a list"]\n', encoding="utf-8")
    (root / "nofield.jsonl").write_text('{"body": "no text field"}\n', encoding="utf-8")
    (root / "notstring.jsonl").write_text('{"text": 42}\n', encoding="utf-8")
    (root / "empty.jsonl").write_text("\n  \n", encoding="utf-8")
    (root / "adir").mkdir()
    (root / "nocol.csv").write_text("body,label\nsome text,0\n", encoding="utf-8")
    (root / "broken.parquet").write_bytes(b"PAR1 but not parquet")
    (root / "afile").write_text("a plain file\n", encoding="utf-8")
    (root / "fakemodel").mkdir()  # looks like a model to the light checks (config.json): errors must come before loading it
    (root / "fakemodel" / "config.json").write_text("{}\n", encoding="utf-8")
    (root / "fakedec").mkdir()
    (root / "fakedec" / "decomposition.json").write_text("{}\n", encoding="utf-8")
    # A folder of the user's own, and one that editor wrote and the user then added to.
    (root / "precious" / "sub").mkdir(parents=True)
    (root / "precious" / "precious.txt").write_text("do not delete\n", encoding="utf-8")
    (root / "precious" / "sub" / "notes.md").write_text("# notes\n", encoding="utf-8")
    (root / "ours").mkdir()
    (root / "ours" / "edit.json").write_text("{}\n", encoding="utf-8")
    write_record(root / "ours")
    (root / "ours" / "precious.txt").write_text("added by the user\n", encoding="utf-8")
    (root / "ours-clean").mkdir()
    (root / "ours-clean" / "edit.json").write_text("{}\n", encoding="utf-8")
    write_record(root / "ours-clean")
    (root / "home").mkdir()  # what `--out ~` expands to
    (root / "home" / ".bashrc").write_text("export PATH\n", encoding="utf-8")
    (root / "dec-partial.partial").mkdir()  # an interrupted decomposition
    (root / "notreport.json").write_text('{"mine": true}\n', encoding="utf-8")
    (root / "bad.yaml").write_text("steps: [1, 2\n", encoding="utf-8")
    (root / "list.yaml").write_text("- 1\n- 2\n", encoding="utf-8")
    (root / "bin.yaml").write_bytes(b"steps: 1\n\x00\x00")
    (root / "include.yaml").write_text("include: missing-base.yaml\nsteps: 3\n", encoding="utf-8")
    (root / "rawdata").mkdir()  # a `target split --source` missing its files
    (root / "rawdata" / "tweets_toxic.jsonl").write_text('{"text": "x"}\n', encoding="utf-8")
    (root / "ro").mkdir()
    (root / "ro").chmod(0o555)
    return root


F = ["forget", "--retain", "good.jsonl"]  # a retain set given, so the shipped one is not read each time
FG = [*F, "--dataset", "good.jsonl"]
FM = [*FG, "--model", "fakemodel", "--decomposition", "fakedec", "--dry-run"]  # gets as far as the model
C = ["components", "--dataset", "good.jsonl"]
D = ["decompose", "--data", "good.jsonl", "--out", "new-dec"]
E = ["eval", "--forget", "good.jsonl", "--retain", "good.jsonl"]
CMP = ["compare", "--out", "new-cmp"]

# (id, arguments ({root}: the folder's absolute path), fragments the one-line message must hold, LIGHT/HEAVY)
CASES = [
    # forget: data files
    ("forget-missing-file", [*F, "--dataset", "missing.jsonl"], ["no such file", "missing.jsonl"], LIGHT),
    ("forget-binary-file", [*F, "--dataset", "bin.jsonl"], ["bin.jsonl", "NUL byte at byte 14"], LIGHT),
    ("forget-latin1-jsonl", [*F, "--dataset", "latin1.jsonl"], ["latin1.jsonl", "not UTF-8", "byte 13"], LIGHT),
    ("forget-malformed-line", [*F, "--dataset", "malformed.jsonl"], ["malformed.jsonl:2", "malformed JSON"], LIGHT),
    ("forget-row-not-object", [*F, "--dataset", "array.jsonl"], ["array.jsonl:1", "expected a JSON object"], LIGHT),
    ("forget-no-text-field", [*F, "--dataset", "nofield.jsonl"], ["nofield.jsonl:1", "'text'", "body", "--text-field"], LIGHT),
    ("forget-text-not-string", [*F, "--dataset", "notstring.jsonl"], ["notstring.jsonl:1", "not a string"], LIGHT),
    ("forget-empty-file", [*F, "--dataset", "empty.jsonl"], ["empty.jsonl", "empty"], LIGHT),
    ("forget-directory-as-data", [*F, "--dataset", "adir"], ["adir", "is a directory"], LIGHT),
    ("forget-csv-no-column", [*F, "--dataset", "nocol.csv"], ["nocol.csv", "no column 'text'", "body, label", "--text-field"], LIGHT),
    ("forget-broken-parquet", [*F, "--dataset", "broken.parquet"], ["broken.parquet", "not a readable Parquet file"], LIGHT),
    ("forget-latin1-retain", ["forget", "--dataset", "good.jsonl", "--retain", "latin1.txt"], ["latin1.txt", "not UTF-8", "byte 21"], LIGHT),
    # forget: model and decomposition
    ("forget-missing-model", [*FG, "--model", "./nope"], ["--model ./nope", "no such model directory"], LIGHT),
    ("forget-file-as-model", [*FG, "--model", "afile"], ["--model afile", "not a Hugging Face model directory"], LIGHT),
    (
        "forget-model-abs-no-decomposition",
        [*FG, "--model", "{root}/fakemodel"],
        ["no shipped decomposition for --model {root}/fakemodel", "--decomposition"],
        HEAVY,
    ),
    ("forget-model-rel-no-decomposition", [*FG, "--model", "fakemodel"], ["no shipped decomposition for --model fakemodel", "--decomposition"], HEAVY),
    ("forget-missing-decomposition", [*FG, "--decomposition", "nodec"], ["--decomposition nodec", "no such folder"], LIGHT),
    ("forget-not-a-decomposition", [*FG, "--decomposition", "adir"], ["--decomposition adir", "not a decomposition"], LIGHT),
    # forget: --out
    ("forget-out-under-a-file", [*FG, "--out", "afile/x"], ["--out afile/x", "afile is a file"], LIGHT),
    ("forget-out-is-a-file", [*FG, "--out", "afile"], ["--out afile", "not a folder"], LIGHT),
    ("forget-out-users-folder-force", [*FG, "--out", "precious", "--force"], ["--out precious", "not written by editor"], LIGHT),
    ("forget-out-home-force", [*FG, "--out", "{root}/home", "--force"], ["--out {root}/home", "not written by editor"], LIGHT),
    ("forget-out-ours-plus-user-file", [*FG, "--out", "ours", "--force"], ["--out ours", "did not write", "precious.txt"], LIGHT),
    ("forget-out-exists-no-force", [*FG, "--out", "ours-clean"], ["--out ours-clean", "already exists", "--force"], LIGHT),
    ("forget-out-current-folder", [*FG, "--out", ".", "--force"], ["--out .", "current folder"], LIGHT),
    pytest.param(
        "forget-out-read-only",
        [*FG, "--out", "ro/x"],
        ["--out ro/x", "not writable"],
        LIGHT,
        marks=pytest.mark.skipif(ROOT_USER, reason="root writes anywhere"),
    ),
    # forget: method and settings
    ("forget-unknown-method", [*FM, "--method", "nope"], ["unknown method 'nope'"], HEAVY),
    ("forget-negative-budget", [*FM, "--set", "max_retain_kl=-1"], ["--set max_retain_kl=-1", "greater than 0"], HEAVY),
    ("forget-zero-components", [*FM, "--set", "components=0"], ["--set components=0", "greater than 0"], HEAVY),
    ("forget-negative-strength", [*FM, "--strength", "-1"], ["--strength -1"], HEAVY),
    ("forget-unknown-setting", [*FM, "--set", "nokey=1"], ["--set nokey=1"], HEAVY),
    ("forget-dotted-setting", [*FM, "--set", "a.b=1"], ["--set a.b=1", "flat"], HEAVY),
    ("forget-set-without-value", [*FM, "--set", "novalue"], ["--set expects key=value", "novalue"], HEAVY),
    # components
    ("components-negative-top", [*C, "--top", "-5"], ["--top"], LIGHT),
    ("components-zero-top", [*C, "--top", "0"], ["--top"], LIGHT),
    ("components-zero-docs", [*C, "--docs", "0"], ["--docs"], LIGHT),
    ("components-missing-file", ["components", "--dataset", "missing.jsonl"], ["no such file", "missing.jsonl"], LIGHT),
    ("components-model-abs-no-decomposition", [*C, "--model", "{root}/fakemodel"], ["no shipped decomposition for --model {root}/fakemodel"], LIGHT),
    # graph
    ("graph-empty-prompt", ["graph", "--prompt", " ", "--out", "new-graph"], ["--prompt is empty"], LIGHT),
    (
        "graph-model-abs-no-decomposition",
        ["graph", "--prompt", "hi", "--model", "{root}/fakemodel"],
        ["no shipped decomposition for --model {root}/fakemodel"],
        LIGHT,
    ),
    ("graph-edit-not-an-edit", ["graph", "--prompt", "hi", "--edit", "adir", "--out", "new-graph"], ["--edit adir", "edit.json"], LIGHT),
    ("graph-fraction-out-of-range", ["graph", "--prompt", "hi", "--node-fraction", "2"], ["--node-fraction"], LIGHT),
    # decompose
    ("decompose-zero-steps", [*D, "--steps", "0"], ["--steps"], LIGHT),
    ("decompose-set-zero-steps", [*D, "--set", "steps=0"], ["--set steps=0"], HEAVY),
    ("decompose-unknown-key", [*D, "--set", "bogus=1"], ["--set bogus=1"], HEAVY),
    ("decompose-unknown-recipe", [*D, "--recipe", "nope"], ["unknown decompose recipe 'nope'"], LIGHT),
    ("decompose-missing-recipe-file", [*D, "--recipe", "missing.yaml"], ["no such recipe file", "missing.yaml"], LIGHT),
    ("decompose-invalid-yaml", [*D, "--recipe", "bad.yaml"], ["bad.yaml", "invalid YAML"], LIGHT),
    ("decompose-recipe-not-mapping", [*D, "--recipe", "list.yaml"], ["list.yaml", "mapping"], LIGHT),
    ("decompose-binary-recipe", [*D, "--recipe", "bin.yaml"], ["bin.yaml", "NUL byte"], LIGHT),
    ("decompose-missing-include", [*D, "--recipe", "include.yaml"], ["include.yaml", "missing-base.yaml"], LIGHT),
    ("decompose-out-exists", ["decompose", "--data", "good.jsonl", "--out", "precious"], ["--out precious", "already exists"], LIGHT),
    ("decompose-out-under-a-file", ["decompose", "--data", "good.jsonl", "--out", "afile/dec"], ["--out afile/dec", "afile is a file"], LIGHT),
    ("decompose-interrupted-no-resume", ["decompose", "--data", "good.jsonl", "--out", "dec-partial"], ["dec-partial.partial", "--resume"], LIGHT),
    ("decompose-binary-data", ["decompose", "--data", "bin.jsonl", "--out", "new-dec"], ["bin.jsonl", "NUL byte"], LIGHT),
    ("decompose-bad-device", [*D, "--device", "gpu"], ["--device gpu"], LIGHT),
    ("decompose-unknown-logger", [*D, "--log", "wandb"], ["--log wandb", "unknown logger", "tensorboard"], LIGHT),
    ("decompose-absent-device", [*D, "--device", "cuda:7"], ["--device cuda:7", "CUDA device"], HEAVY),
    # eval
    ("eval-out-folder", [*E, "--out", "adir"], ["--out adir", "is a folder"], LIGHT),
    ("eval-write-tasks-is-a-file", [*E, "--write-tasks", "afile"], ["--write-tasks afile", "not a folder"], LIGHT),
    ("eval-write-tasks-users-folder", [*E, "--write-tasks", "precious", "--force"], ["--write-tasks precious", "not written by editor"], LIGHT),
    ("eval-out-users-file", [*E, "--out", "notreport.json", "--force"], ["notreport.json", "not a report of editor eval"], LIGHT),
    ("eval-out-under-a-file", [*E, "--out", "afile/r.json"], ["--out afile/r.json", "afile is a file"], LIGHT),
    ("eval-binary-forget", ["eval", "--forget", "bin.jsonl"], ["bin.jsonl", "NUL byte"], LIGHT),
    ("eval-missing-prompts", [*E, "--toxicity", "--prompts", "missing.jsonl"], ["--prompts missing.jsonl", "no such file"], LIGHT),
    ("eval-latin1-prompts", [*E, "--toxicity", "--prompts", "latin1.txt"], ["latin1.txt", "not UTF-8"], LIGHT),
    ("eval-missing-adapter", [*E, "--adapter", "noadapter"], ["--adapter noadapter", "no such folder"], LIGHT),
    ("eval-unknown-scorer", [*E, "--scorer", "foo"], ["--scorer"], LIGHT),
    ("eval-negative-limit", [*E, "--limit", "-1"], ["--limit"], LIGHT),
    ("eval-missing-detoxify-checkpoint", [*E, "--detoxify-checkpoint", "no.ckpt"], ["--detoxify-checkpoint no.ckpt"], LIGHT),
    ("eval-zero-prompts", [*E, "--model", "fakemodel", "--n-prompts", "0"], ["--n-prompts 0"], HEAVY),
    ("eval-one-bit", [*E, "--model", "fakemodel", "--quant-bits", "1"], ["--quant-bits"], HEAVY),
    ("eval-zero-relearn-lr", [*E, "--model", "fakemodel", "--relearn-lr", "0"], ["--relearn-lr 0"], HEAVY),
    # compare
    ("compare-out-users-folder-force", ["compare", "--out", "precious", "--force"], ["--out precious", "not written by editor"], LIGHT),
    ("compare-latin1-dataset", [*CMP, "--dataset", "latin1.jsonl"], ["latin1.jsonl", "not UTF-8"], LIGHT),
    ("compare-empty-heldout", [*CMP, "--heldout-retain", "empty.jsonl"], ["empty.jsonl", "empty"], LIGHT),
    ("compare-missing-oracle", [*CMP, "--oracle", "./nope"], ["--oracle ./nope", "no such model directory"], LIGHT),
    # target
    ("build-unknown-recipe", ["target", "build", "nope"], ["unknown targets recipe 'nope'"], LIGHT),
    ("build-zero-steps", ["target", "build", "tiny-toxic", "--steps", "0"], ["--steps"], LIGHT),
    ("build-out-users-folder-force", ["target", "build", "tiny-toxic", "--out", "precious", "--force"], ["--out precious", "not written by editor"], LIGHT),
    ("build-out-exists", ["target", "build", "tiny-toxic", "--out", "ours-clean"], ["--out ours-clean", "already exists", "--force"], LIGHT),
    ("split-no-source", ["target", "split"], ["--source"], LIGHT),
    ("split-missing-source", ["target", "split", "--source", "nosrc", "--out", "new-data"], ["--source nosrc", "no such folder"], LIGHT),
    ("split-incomplete-source", ["target", "split", "--source", "rawdata", "--out", "new-data"], ["--source rawdata", "missing source files"], LIGHT),
    ("tokenizer-small-vocab", ["target", "tokenizer", "--vocab-size", "10", "--out", "new-tok"], ["--vocab-size"], LIGHT),
    ("tokenizer-out-users-folder-force", ["target", "tokenizer", "--out", "precious", "--force"], ["--out precious", "not written by editor"], LIGHT),
    ("sample-missing-model", ["target", "sample", "hi", "--model", "./nope"], ["--model ./nope"], LIGHT),
    ("sample-zero-n", ["target", "sample", "hi", "--n", "0"], ["--n"], LIGHT),
    ("report-missing-model", ["target", "report", "--model", "./nope"], ["--model ./nope"], LIGHT),
    (
        "eval-assets-scorer-users-folder",
        ["target", "eval-assets", "--scorer-out", "precious", "--force"],
        ["--scorer-out precious", "not written by editor"],
        LIGHT,
    ),
    (
        "eval-assets-prompts-users-file",
        ["target", "eval-assets", "--scorer-out", "new-scorer", "--prompts-out", "notreport.json", "--force"],
        ["--prompts-out", "notreport.json", "not a prompt file"],
        LIGHT,
    ),
    ("eval-assets-one-prompt", ["target", "eval-assets", "--n-prompts", "1"], ["--n-prompts"], LIGHT),
]


def _id(case) -> str:
    return case.values[0] if hasattr(case, "values") else case[0]


def _fill(items: list[str], root: Path) -> list[str]:
    return [s.replace("{root}", str(root)) for s in items]


@pytest.mark.parametrize("name, args, fragments, light", CASES, ids=[_id(c) for c in CASES])
def test_bad_input(bad: Path, monkeypatch, name, args, fragments, light):
    monkeypatch.chdir(bad)
    before = tree(bad)
    result = invoke(*_fill(args, bad))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in _fill(fragments, bad):
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert tree(bad) == before  # nothing written, nothing deleted, nothing touched


def _args(case) -> list[str]:
    return case.values[1] if hasattr(case, "values") else case[1]


def test_battery_covers_every_command():
    assert len(CASES) >= 40
    assert {_args(c)[0] for c in CASES} == {"forget", "components", "graph", "decompose", "eval", "compare", "target"}
    assert {_args(c)[1] for c in CASES if _args(c)[0] == "target"} == {"build", "split", "tokenizer", "sample", "report", "eval-assets"}


# The light cases in fresh processes: each forked from one that has imported only the CLI, so what the
# command imports before its message is exactly what a user's run would.
RUNNER = """
import json, os, sys, time
import typer.main
from editor.cli import app
cli = typer.main.get_command(app)  # built once: typer rebuilds it on every app() call
# The light modules every case needs, loaded once here (if one of them imported torch, every case would fail).
import pydantic, yaml, lmkit.texts, lmkit.files, editor.model_io, editor.recipe, editor.targets.config, editor.compare_data
import evals.report, evals.toxicity, decompose.layout
cases = json.loads(sys.stdin.read())
for name, args in cases:
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        start = time.perf_counter()
        try:
            cli.main(args, prog_name="editor")
            code = 0
        except SystemExit as e:
            code = e.code
        heavy = [m for m in ("torch", "transformers", "lm_eval") if m in sys.modules]
        os.write(write, json.dumps([name, code, heavy, time.perf_counter() - start]).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        line = f.read()
    os.wait()
    print(line, flush=True)
"""


def test_light_cases_fail_before_heavy_imports(bad: Path):
    light = [(_id(c), _fill(c[1], bad)) for c in CASES if not hasattr(c, "values") and c[3] is LIGHT]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(light), cwd=bad, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    results = {name: (code, heavy, seconds) for name, code, heavy, seconds in map(json.loads, out.stdout.splitlines())}
    assert results.keys() == {name for name, _ in light}
    for name, (code, heavy, seconds) in results.items():
        assert code == 2, (name, code)
        assert heavy == [], f"{name}: imported {heavy} before its message ({seconds:.2f}s)"
