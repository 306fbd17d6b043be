"""Fault injection for the tests: named points where a run can be made to receive a signal.

`EDITOR_FAILPOINT=NAME:SIGNAL[:N]` sends SIGNAL (TERM, INT, KILL) to this process the Nth time (default
the first) the code passes `failpoint(NAME)`. Unset, a failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_passes: Counter[str] = Counter()


def failpoint(name: str) -> None:
    spec = os.environ.get("EDITOR_FAILPOINT")
    if not spec:
        return
    point, _, rest = spec.partition(":")
    if point != name:
        return
    sig, _, nth = rest.partition(":")
    _passes[name] += 1
    if _passes[name] == int(nth or 1):
        os.kill(os.getpid(), getattr(signal, f"SIG{sig or 'TERM'}"))
