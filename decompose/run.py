"""Train a decomposition into a directory, atomically and resumably.

Work happens in `<out>.partial/` (checkpoints, metrics.jsonl); the finished directory is renamed to
`<out>` only when complete. `resume=True` continues from the last complete checkpoint; with a fixed
seed on CPU the result equals an uninterrupted run bit for bit.
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
from decompose.errors import DecompositionError
from decompose.evaluate import evaluate
from decompose.io import save_decomposition
from decompose.targets import fingerprint
from decompose.train import BatchSource, Decomposer

StepCallback = Callable[[int, int, dict[str, float]], None]


def partial_dir(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def _versions() -> dict[str, str]:
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def _read_metrics(path: Path, upto_step: int) -> list[str]:
    """metrics.jsonl lines up to a checkpoint's step (a resumed run rewrites what came after)."""
    if not path.is_file():
        return []
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line and json.loads(line)["step"] <= upto_step]


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
    on_step: StepCallback | None = None,
    on_eval: Callable[[dict], None] | None = None,
) -> Path:
    out = Path(out)
    work = partial_dir(out)
    if out.exists():
        raise DecompositionError(f"{out} already exists; choose another --out or remove it")
    if work.exists() and not resume:
        raise DecompositionError(f"{work} holds an interrupted run: pass --resume to continue it, or remove it")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dec = Decomposer(model, cfg, data, device)
    eval_gen = torch.Generator().manual_seed(cfg.seed + 2)
    eval_batches = [dec.batches(eval_gen) for _ in range(cfg.eval.batches)]
    ckpt_dir = work / "checkpoints"
    metrics_path = work / "metrics.jsonl"
    ckpt = latest_checkpoint(ckpt_dir) if resume else None
    if ckpt is not None:
        dec.load_state_dict(load_checkpoint(ckpt))
    lines = _read_metrics(metrics_path, dec.step) if ckpt is not None else []
    work.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    start = time.perf_counter()
    last_eval: dict = {}

    def log(record: dict) -> None:
        with metrics_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    while not dec.done:
        metrics = dec.train_step()
        main_step = dec.step - dec.warmup_steps
        if on_step is not None:
            on_step(dec.step, dec.total_steps, metrics)
        if main_step > 0 and (main_step % cfg.eval.every == 0 or dec.done):
            last_eval = evaluate(dec, eval_batches, cfg.eval, seed=cfg.seed)
            log({"step": dec.step, "kind": "eval", **last_eval})
            if on_eval is not None:
                on_eval(last_eval)
        elif dec.step % 50 == 0:
            log({"step": dec.step, "kind": "train", **metrics})
        if dec.step % cfg.checkpoint_every == 0 or dec.done:
            save_checkpoint(dec.state_dict(), ckpt_dir, dec.step)

    if not last_eval:  # resumed after the final step's checkpoint
        last_eval = evaluate(dec, eval_batches, cfg.eval, seed=cfg.seed)
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
        "versions": _versions(),
    }
    save_decomposition(dec.cm, dec.ci_fn, manifest, work)
    if not cfg.keep_checkpoints:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    work.rename(out)
    return out
