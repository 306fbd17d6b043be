"""Fault injection: `editor forget` and `editor decompose` as real processes, sent SIGTERM or SIGKILL at known
points (lmkit.faults: EDITOR_FAILPOINT=NAME:SIGNAL[:N]); then nothing half-written may be left where the user
looks, and a rerun (forget) or `--resume` (decompose) must succeed with the result of an uninterrupted run.

Slow tier: each case is two runs of the CLI in a fresh Python process (imports included).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from decompose.layout import partial_dir
from editor.paths import TRAIN
from tests.editor.clitools import Workspace, jsonl_texts, write_jsonl

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# Small settings: the result is not the point, only that an interrupted run changes nothing about it.
FAST = [f"--set={s}" for s in ("max_components=2", "steps=2", "stats_docs=16", "search_docs=8", "curve_points=2", "explain_docs=2", "opt_batch_size=8")]


def editor(*args: str | Path, cwd: Path, failpoint: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "EDITOR_FAILPOINT": failpoint, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "editor.cli", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def exit_code(sig: str) -> int:
    """What the run's exit status is: SIGTERM unwinds (cleanup) and exits 128+15; SIGKILL cannot be caught."""
    return 128 + signal.SIGTERM if sig == "TERM" else -signal.SIGKILL


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- editor forget --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def forget_args(workspace: Workspace, tmp_path_factory) -> list[str | Path]:
    root = tmp_path_factory.mktemp("signals-data")
    retain = [json.loads(line)["text"] for line in workspace.retain.read_text().splitlines()]
    forget = write_jsonl(root / "forget.jsonl", jsonl_texts(TRAIN["toxic"], 40))
    keep = write_jsonl(root / "retain.jsonl", retain[:20] + retain[-20:])
    return ["forget", "--method", "vpd-remove", "--model", workspace.model, "--decomposition", workspace.dec, "--dataset", forget, "--retain", keep, *FAST]


@pytest.fixture(scope="module")
def reference(forget_args, tmp_path_factory) -> Path:
    """An uninterrupted run."""
    root = tmp_path_factory.mktemp("signals-ref")
    result = editor(*forget_args, "--out", "edited", cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "edited"


def same_edit(out: Path, reference: Path) -> None:
    removed = [(c["module"], c["index"]) for c in json.loads((out / "edit.json").read_text())["components"]]
    assert removed == [(c["module"], c["index"]) for c in json.loads((reference / "edit.json").read_text())["components"]]
    assert (out / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()
    assert (out / "adapter" / "adapter_model.safetensors").read_bytes() == (reference / "adapter" / "adapter_model.safetensors").read_bytes()


@pytest.mark.parametrize("sig", ["TERM", "KILL"])
@pytest.mark.parametrize("point", ["statistics", "ranking", "export"])
def test_forget_interrupted_then_rerun(forget_args, reference, tmp_path, point, sig):
    stopped = editor(*forget_args, "--out", "edited", cwd=tmp_path, failpoint=f"forget.{point}:{sig}")
    assert stopped.returncode == exit_code(sig), stopped.stderr
    assert "Traceback" not in stopped.stderr
    # SIGTERM cleans up on the way out; SIGKILL can leave only the temporary folder, under its own name.
    left = listing(tmp_path)
    assert left == (["edited.tmp-export"] if (sig, point) == ("KILL", "export") else []), left

    rerun = editor(*forget_args, "--out", "edited", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert listing(tmp_path) == ["edited"]  # the leftover was cleared
    same_edit(tmp_path / "edited", reference)


# --- editor decompose -----------------------------------------------------------------------------------

# The tiny recipe checkpoints at steps 10, 20 and 25 (the end); a checkpoint's second write is step 20's.
DECOMPOSE_POINTS = [
    ("decompose.step:{sig}:13", ["step_00000010"]),  # training, 3 steps after the first checkpoint
    ("decompose.checkpoint:{sig}:2", ["step_00000010"]),  # while writing step 20's checkpoint
]


@pytest.mark.parametrize("sig", ["TERM", "KILL"])
@pytest.mark.parametrize("point, kept", DECOMPOSE_POINTS, ids=["training", "checkpoint-write"])
def test_decompose_interrupted_then_resumed(workspace: Workspace, tmp_path, point, kept, sig):
    args = ["decompose", "--model", workspace.model, "--data", workspace.data, "--recipe", workspace.recipe, "--out", "dec"]
    stopped = editor(*args, cwd=tmp_path, failpoint=point.format(sig=sig))
    assert stopped.returncode == exit_code(sig), stopped.stderr
    assert "Traceback" not in stopped.stderr
    work = partial_dir(tmp_path / "dec")
    assert listing(tmp_path) == [work.name]  # no half-written decomposition, only the resumable work
    checkpoints = listing(work / "checkpoints")
    if sig == "TERM":
        assert checkpoints == kept  # a checkpoint being written is removed on the way out
        assert "--resume" in stopped.stderr
    else:
        assert [c for c in checkpoints if ".tmp-" not in c] == kept  # the last complete one is intact

    resumed = editor(*args, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert listing(tmp_path) == ["dec"]
    out, ref = load_file(tmp_path / "dec" / "components.safetensors"), load_file(workspace.dec / "components.safetensors")
    assert out.keys() == ref.keys() and all((out[k] == ref[k]).all() for k in ref)
    assert (tmp_path / "dec" / "metrics.jsonl").read_text() == (workspace.dec / "metrics.jsonl").read_text()
