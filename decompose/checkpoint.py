"""Resumable checkpoints: written to a temporary folder and renamed, so a kill at any moment leaves the
last complete checkpoint intact. Tensors go to safetensors, the rest to JSON (no pickle)."""

from __future__ import annotations

import shutil
from pathlib import Path

from decompose.state_io import load_state, save_state

PREFIX = "step_"


def save_checkpoint(state: dict, directory: Path, step: int, keep: int = 1) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{PREFIX}{step:08d}"
    tmp = directory / f".tmp-{PREFIX}{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_state(state, tmp, "state")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)  # atomic on one filesystem: the checkpoint exists whole or not at all
    for old in sorted(directory.glob(f"{PREFIX}*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(directory: Path) -> Path | None:
    for tmp in directory.glob(f".tmp-{PREFIX}*"):  # left by a kill during a write
        shutil.rmtree(tmp, ignore_errors=True)
    done = sorted(directory.glob(f"{PREFIX}*")) if directory.is_dir() else []
    return done[-1] if done else None


def load_checkpoint(path: Path) -> dict:
    return load_state(path, "state")
