"""Train a decomposition into a directory, atomically and resumably.

Work happens in `<out>.partial/` (checkpoints, metrics.jsonl, metrics.png redrawn at every evaluation,
TensorBoard events with `log="tensorboard"`); the finished directory is renamed to `<out>` only when complete. `resume=True` continues from the last complete checkpoint; with a fixed
seed on CPU the result equals an uninterrupted run bit for bit.

Under torchrun every rank trains (decompose.distributed) and evaluates its own batches (metrics averaged
over the ranks), and only rank 0 writes. A checkpoint holds rank 0's full state plus every other rank's
generators and adversary, so resuming with the same number of ranks continues exactly.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch

from decompose.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from decompose.config import DecomposeConfig
from decompose.distributed import DistInfo, barrier, broadcast_object, gather_to_main, init_distributed, reduce_metrics
from decompose.errors import DecompositionError
from decompose.evaluate import evaluate
from decompose.io import save_decomposition
from decompose.layout import partial_dir
from decompose.logs import TENSORBOARD_DIR, TensorBoardLog, check_log, plot_metrics
from decompose.quality import write_quality
from decompose.targets import fingerprint
from decompose.train import PER_RANK_STATE, BatchSource, Decomposer
from lmkit.faults import failpoint
from lmkit.files import versions, write_record

StepCallback = Callable[[int, int, dict[str, float]], None]


def _read_metrics(path: Path, upto_step: int) -> list[str]:
    """metrics.jsonl lines up to a checkpoint's step (a resumed run rewrites what came after)."""
    if not path.is_file():
        return []
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line and json.loads(line)["step"] <= upto_step]


def _save_checkpoint(dec: Decomposer, directory: Path, dist: DistInfo) -> None:
    """Rank 0 writes its state, with the other ranks' own generators and adversary under "ranks"."""
    state = dec.state_dict()
    if dist.world_size > 1:
        per_rank = gather_to_main({k: state[k] for k in PER_RANK_STATE})
        if per_rank is not None:
            state["world_size"] = dist.world_size
            state["ranks"] = {r: s for r, s in enumerate(per_rank) if r > 0}
    if dist.is_main:
        save_checkpoint(state, directory, dec.step)


def _load_checkpoint(path: Path, dist: DistInfo) -> dict:
    """This rank's state: the shared parameters and optimisers, and its own generators and adversary."""
    state = load_checkpoint(path)
    saved = state.pop("world_size", 1)
    if saved != dist.world_size:
        raise DecompositionError(f"{path} was written by {saved} process(es); resume it with {saved}, not {dist.world_size}")
    ranks = state.pop("ranks", {})
    if dist.rank > 0:
        state.update(ranks[dist.rank])
    return state


def start_run(out: Path, cfg: DecomposeConfig, *, resume: bool, interrupted: str) -> Path:
    """What every method does before training into `out`: refuse an existing `out`, and an interrupted run
    unless resuming (`interrupted` tells the user what to do about it); then set the thread count.
    Returns the work folder, `<out>.partial/`."""
    work = partial_dir(out)
    if out.exists():
        raise DecompositionError(f"{out} already exists; choose another --out or remove it")
    if work.exists() and not resume:
        raise DecompositionError(f"{work} holds an interrupted run: {interrupted}")
    barrier()  # every rank has checked before rank 0 creates anything
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return work


def run_decomposition(
    model,
    data: torch.Tensor | BatchSource,
    cfg: DecomposeConfig,
    out: Path,
    *,
    resume: bool = False,
    model_source: str = "",
    data_description: dict | None = None,
    device: str = "cpu",
    dist: DistInfo | None = None,
    log: str | None = None,
    on_step: StepCallback | None = None,
    on_eval: Callable[[dict], None] | None = None,
) -> Path:
    """Train and save into `out`. `dist`: default init_distributed (torchrun's ranks, else one process).
    `log`: None, or "tensorboard" to also write every metrics record as TensorBoard scalars (`out/tensorboard/`).

    Callbacks run on every rank: `on_step` with this rank's step metrics, `on_eval` with the ranks' mean.
    """
    if cfg.method == "apd":
        if isinstance(data, torch.Tensor) or resume:
            raise DecompositionError(
                "method apd decomposes toy models with vector outputs (e.g. editor decompose --model toy:tms-5-2 --recipe tms-5-2-apd) and does not resume"
            )
        from decompose.apd import run_apd

        return run_apd(model, data, cfg, Path(out), manifest_extra={"data": data_description or {}, "model": {"source": model_source}}, on_step=on_step)
    out = Path(out)
    check_log(log)
    dist = dist if dist is not None else init_distributed(torch.device(device).type)
    work = start_run(out, cfg, resume=resume, interrupted="pass --resume to continue it, or remove it")
    dec = Decomposer(model, cfg, data, device, dist)
    eval_gen = torch.Generator().manual_seed(dist.seed(cfg.seed + 2))
    eval_batches = [dec.batches(eval_gen) for _ in range(cfg.eval.batches)]
    ckpt_dir = work / "checkpoints"
    metrics_path = work / "metrics.jsonl"
    ckpt = broadcast_object(latest_checkpoint(ckpt_dir) if resume and dist.is_main else None)
    if ckpt is not None:
        dec.load_state_dict(_load_checkpoint(ckpt, dist))
    if dist.is_main:
        lines = _read_metrics(metrics_path, dec.step) if ckpt is not None else []
        work.mkdir(parents=True, exist_ok=True)
        metrics_path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    start = time.perf_counter()
    last_eval: dict = {}
    board = TensorBoardLog(work / TENSORBOARD_DIR) if log == "tensorboard" and dist.is_main else None

    def write(record: dict) -> None:
        if dist.is_main:
            with metrics_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            if board is not None:
                board.write(record)

    def run_eval() -> dict:
        return reduce_metrics(evaluate(dec, eval_batches, cfg.eval, seed=dist.seed(cfg.seed)))

    while not dec.done:
        metrics = dec.train_step()
        failpoint("decompose.step")
        main_step = dec.step - dec.warmup_steps
        if on_step is not None:
            on_step(dec.step, dec.total_steps, metrics)
        if main_step > 0 and (main_step % cfg.eval.every == 0 or dec.done):
            last_eval = run_eval()
            write({"step": dec.step, "kind": "eval", **last_eval})
            if dist.is_main:
                plot_metrics(metrics_path)
            if on_eval is not None:
                on_eval(last_eval)
        elif dec.step % 50 == 0:
            write({"step": dec.step, "kind": "train", **reduce_metrics(metrics)})
        if dec.step % cfg.checkpoint_every == 0 or dec.done:
            _save_checkpoint(dec, ckpt_dir, dist)

    if board is not None:
        board.close()
    if not last_eval:  # resumed after the final step's checkpoint
        last_eval = run_eval()
    if not dist.is_main:
        barrier()  # rank 0 writes the result
        return out
    manifest = {
        "name": cfg.name,
        "config": cfg.model_dump(mode="json"),
        "model": {
            "source": model_source,
            "class": type(model).__name__,
            "model_type": getattr(getattr(model, "config", None), "model_type", None),
            "fingerprint": fingerprint(list(dec.cm.targets.values())),
        },
        "modules": [{"name": n, "d_in": t.d_in, "d_out": t.d_out, "C": dec.cm.C(n), "kind": t.kind} for n, t in dec.cm.targets.items()],
        "metrics": last_eval,
        "data": data_description or {},
        "steps": {"warmup": dec.warmup_steps, "main": cfg.steps},
        "seconds_this_process": round(time.perf_counter() - start, 1),
        "versions": versions(),
    }
    if dist.world_size > 1:
        manifest["data_parallel"] = {"world_size": dist.world_size, "batch_size_per_rank": cfg.batch_size}
    save_decomposition(dec.cm, dec.ci_fn, manifest, work)
    write_quality(work, manifest)
    if not cfg.keep_checkpoints:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    write_record(work)  # what a later run may replace (lmkit.files.check_replaceable)
    work.rename(out)
    barrier()
    return out
