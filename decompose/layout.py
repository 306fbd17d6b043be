"""Where a decomposition run keeps its unfinished work, importable without torch (the CLI checks it first)."""

from __future__ import annotations

from pathlib import Path


def partial_dir(out: Path) -> Path:
    """`<out>.partial/`: checkpoints and metrics of a run until it is complete and renamed to `out`."""
    return out.with_name(out.name + ".partial")
