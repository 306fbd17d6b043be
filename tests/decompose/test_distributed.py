"""Data-parallel decomposition: 2 gloo processes on CPU under torchrun stay identical and see different data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from decompose.distributed import DistInfo, all_reduce_mean_, init_distributed, reduce_metrics
from decompose.state_io import load_state

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_single_process_is_a_no_op(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    info = init_distributed("cpu")
    assert info == DistInfo() and info.is_main and info.seed(5) == 5
    t = torch.tensor([1.0, 2.0])
    all_reduce_mean_([t])
    assert t.tolist() == [1.0, 2.0]
    metrics = {"a": 1, "b": 2.5}
    assert reduce_metrics(metrics) is metrics


def test_rank_seeds_are_disjoint():
    seeds = [DistInfo(r, 4).seed(base) for base in (10, 11, 12) for r in range(4)]
    assert len(set(seeds)) == len(seeds)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    env = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out


def test_ranks_stay_identical_and_train(ddp_run):
    r0, r1 = (load_file(str(ddp_run / f"rank{r}.safetensors")) for r in (0, 1))
    init = load_file(str(ddp_run / "init.safetensors"))
    sources = [k for k in r0 if k.startswith("pgd_source.")]
    assert sources and r0.keys() == r1.keys() == init.keys() | set(sources)
    assert any(k.startswith("components.") and k.endswith(".U") for k in r0)
    assert any(k.startswith("components.") and k.endswith(".V") for k in r0)
    assert any(k.startswith("ci_fn.") for k in r0)
    for k in r0:
        assert torch.equal(r0[k], r1[k]), f"ranks differ in {k}"
        if k in init:
            assert not torch.equal(r0[k], init[k]), f"{k} did not train"


def test_ranks_see_different_data_and_masks(ddp_run):
    m0, m1 = (json.loads((ddp_run / f"rank{r}.json").read_text()) for r in (0, 1))
    assert len(m0) == len(m1) == 8  # 2 warmup + 6 main steps
    # The faithfulness warmup uses no data: the same on both ranks. Main steps: own batches, masks, adversary.
    assert [m["faithfulness"] for m in m0[:2]] == [m["faithfulness"] for m in m1[:2]]
    for key in ("stochastic_recon", "pgd_recon", "persistent_pgd_recon", "importance_minimality"):
        assert all(a[key] != b[key] for a, b in zip(m0[2:], m1[2:])), key


def test_run_resumes_exactly_and_only_rank0_writes(ddp_run):
    run = ddp_run / "run"
    assert run.is_dir() and not (ddp_run / "run.partial").exists()
    # Interrupted after step 7 and resumed from step 6: the same parameters as the uninterrupted loop.
    saved = load_file(str(run / "components.safetensors"))
    r0 = {k: v for k, v in load_file(str(ddp_run / "rank0.safetensors")).items() if not k.startswith("pgd_source.")}
    for k, v in r0.items():
        name = k.split(".", 1)[1]
        if k.startswith("components."):
            module, which = name.rsplit(".", 1)
            v_saved = saved[f"{which}.{module.replace('-', '.')}"]
        else:
            v_saved = saved[k]
        assert torch.equal(v, v_saved), k
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len(set(lines))  # one writer
    evals = [json.loads(line) for line in lines if json.loads(line)["kind"] == "eval"]
    assert [e["step"] for e in evals] == [5, 8]
    manifest = json.loads((run / "decomposition.json").read_text())
    assert manifest["data_parallel"] == {"world_size": 2, "batch_size_per_rank": 2}
    state = load_state(run / "checkpoints" / "step_00000008", "state")
    assert state["world_size"] == 2 and set(state["ranks"]) == {1}
    assert not torch.equal(state["ranks"][1]["mask_gen"], state["mask_gen"])
