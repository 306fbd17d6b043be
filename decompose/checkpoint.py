"""Resumable checkpoints: each is written whole through lmkit.files.atomic_dir, so a kill at any moment leaves
the last complete checkpoint intact. Tensors go to safetensors, the rest to JSON (no pickle)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from decompose.state_io import load_state, save_state
from lmkit.faults import failpoint
from lmkit.files import atomic_dir

PREFIX = "step_"
_DONE = re.compile(rf"{PREFIX}\d{{8}}")


def _finished(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if _DONE.fullmatch(p.name)) if directory.is_dir() else []


def save_checkpoint(state: dict, directory: Path, step: int, keep: int = 1) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{PREFIX}{step:08d}"
    with atomic_dir(final, "checkpoint", force=True, option="checkpoint") as tmp:
        save_state(state, tmp, "state")
        failpoint("decompose.checkpoint")
    for old in _finished(directory)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(directory: Path) -> Path | None:
    for tmp in directory.glob(f"{PREFIX}*.tmp-*") if directory.is_dir() else []:  # left by a kill during a write
        shutil.rmtree(tmp, ignore_errors=True)
    done = _finished(directory)
    return done[-1] if done else None


def load_checkpoint(path: Path) -> dict:
    return load_state(path, "state")
