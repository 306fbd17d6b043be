"""Unlearning methods behind `editor forget --method`: VPD (the default) and the baselines it is compared with.

Adding a baseline: one file with its settings class and its `run`, and one line in BASELINES below;
the parametrised tests in tests/methods run every registered baseline through the same checks.
"""

from __future__ import annotations

from editor.errors import EditorError
from editor.methods.base import Baseline
from editor.methods.gradient import GA, GRADDIFF, NPO
from editor.methods.task_vector import TASK_VECTOR

VPD = "vpd"
BASELINES: dict[str, Baseline] = {b.name: b for b in (GA, GRADDIFF, NPO, TASK_VECTOR)}
METHODS: tuple[str, ...] = (VPD, *BASELINES)


def get_baseline(name: str) -> Baseline:
    if name not in BASELINES:
        raise EditorError(f"unknown method '{name}' (known: {', '.join(METHODS)})")
    return BASELINES[name]


def check_method(name: str) -> str:
    if name not in METHODS:
        raise EditorError(f"unknown method '{name}' (known: {', '.join(METHODS)})")
    return name
