"""Unlearning methods behind `editor forget --method` and `editor compare`: VPD (the default) and the baselines.

Every method is a `Method` (editor.methods.base) whose `run` returns one `Edit` per strength. Adding one:
a file with its settings class and its `run`, and one entry in METHODS below; the parametrised tests
in tests/editor/methods run every registered method through the same checks.
"""

from __future__ import annotations

from editor.errors import EditorError
from editor.methods.base import Method
from editor.methods.gradient import GA, GRADDIFF, NPO
from editor.methods.task_vector import TASK_VECTOR
from editor.methods.vpd import VPD

METHODS: dict[str, Method] = {m.name: m for m in (VPD, GA, GRADDIFF, NPO, TASK_VECTOR)}
DEFAULT_METHOD = VPD.name


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise EditorError(f"unknown method '{name}' (known: {', '.join(METHODS)})")
    return METHODS[name]
