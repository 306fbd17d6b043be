"""Unlearning methods behind `editor forget --method` and `editor compare`: the VPD edit kinds and the baselines.

Every method is a `Method` (editor.methods.base) whose `run` returns one `Edit` per strength. Adding one:
a file with its settings class and its `run`, and one entry in METHODS below; the parametrised tests
in tests/editor/methods run every registered method through the same checks. `vpd` names the default
VPD edit kind (the one that measured best on the shipped default, README "Forgetting toxicity").
"""

from __future__ import annotations

from editor.errors import EditorError
from editor.methods.base import Method
from editor.methods.gradient import GA, GRADDIFF, NPO
from editor.methods.task_vector import TASK_VECTOR
from editor.methods.vpd_project import VPD_PROJECT
from editor.methods.vpd_refit import VPD_SCALE, VPD_WRITE
from editor.methods.vpd_remove import VPD_REMOVE

METHODS: dict[str, Method] = {m.name: m for m in (VPD_WRITE, VPD_SCALE, VPD_PROJECT, VPD_REMOVE, GA, GRADDIFF, NPO, TASK_VECTOR)}
ALIASES = {"vpd": VPD_WRITE.name}
DEFAULT_METHOD = "vpd"


def get_method(name: str) -> Method:
    name = ALIASES.get(name, name)
    if name not in METHODS:
        raise EditorError(f"unknown method '{name}' (known: {', '.join([*ALIASES, *METHODS])})")
    return METHODS[name]
