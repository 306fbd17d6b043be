"""How long one default `editor forget` takes on the shipped default, stage by stage, export included.

    python benchmarks/forget_speed.py [--method vpd] [--threads 2] [--set key=value ...]

Runs what `make demo` runs (the library calls the command makes), in one process, and prints one JSON
object: seconds per stage (loading, each status the method reports, the before/after measurement,
export), total wall time, process CPU time, and the machine's load average at the start and the end
(these CPUs are shared: a load above the core count means the wall time is inflated).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="vpd")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args(argv)
    load_start = os.getloadavg()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    import torch

    torch.set_num_threads(args.threads)
    from decompose.io import load_decomposition
    from editor.export import export_edit
    from editor.forget import forget, method_settings
    from editor.methods import get_method
    from editor.methods.base import Progress
    from editor.model_io import load_model
    from editor.paths import DECOMPOSITIONS, FORGET_DEFAULT, RETAIN_DEFAULT
    from lmkit.texts import load_many, load_texts

    stages: dict[str, float] = {}
    mark = [time.perf_counter(), "loading model, decomposition and data"]

    def status(message: str) -> None:
        now = time.perf_counter()
        stages[mark[1]] = stages.get(mark[1], 0.0) + now - mark[0]
        mark[:] = [now, message]

    method = get_method(args.method)
    model, tok = load_model("tiny-toxic")
    dec = load_decomposition(model, DECOMPOSITIONS / "tiny-toxic") if method.needs_decomposition else None
    forget_data = load_texts(FORGET_DEFAULT)
    retain_data = load_many([str(p) for p in RETAIN_DEFAULT])
    edit = forget(
        method.name, model, tok, forget_data, retain_data, method_settings(method, None, args.sets), decomposition=dec, progress=Progress(status=status)
    )
    status("exporting")
    with tempfile.TemporaryDirectory() as tmp:
        export_edit(Path(tmp) / "out", model, tok, edit, base_name_or_path="tiny-toxic")
    status("done")
    result = {
        "method": edit.method,
        "summary": edit.summary,
        "stages_s": {k: round(v, 2) for k, v in stages.items()},
        "wall_s": round(time.perf_counter() - wall0, 2),
        "cpu_s": round(time.process_time() - cpu0, 2),
        "threads": args.threads,
        "loadavg_1min": {"start": round(load_start[0], 2), "end": round(os.getloadavg()[0], 2)},
        "cores": os.cpu_count(),
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
