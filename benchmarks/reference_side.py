"""The reference half of benchmarks/reference_parity.py: train goodfire-ai/spd's own `optimize()` on a given job.

    python benchmarks/reference_side.py JOB.json      # run by reference_parity.py with the reference's interpreter

It imports nothing from this project, so it can run in another environment. The job names a checkout of the
reference, a saved target model, the initial components and CI-function weights, the batches and a
reference `Config` as a dict. The training is the reference's `spd.run_spd.optimize` itself; the only
things patched are where it takes its initial weights (its ComponentModel, subclassed to copy ours in after
its own random init), where it logs (a list instead of files), and a timestamp per step (the lr schedule,
called once at the start of every step).

Compatibility: the reference declares Python 3.13. Its code runs on 3.11 except for PEP 695 type
parameters (`def f[T](...)`, `class C[T]:`) and `typing.override`; `install_compat` rewrites those two
while importing (type parameters become module-level TypeVars; nothing on disk changes).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import re
import sys
import tempfile
import time
import typing
from pathlib import Path
from typing import Any, cast

_DEPTH = {"[": 1, "(": 1, "]": -1, ")": -1}
_GENERIC = re.compile(r"^[ \t]*(?:async\s+)?(?P<kw>def|class)\s+\w+\[", re.M)


def _closing(src: str, i: int) -> int:
    depth = 0
    for j in range(i, len(src)):
        depth += _DEPTH.get(src[j], 0)
        if depth == 0:
            return j
    raise SyntaxError("unbalanced type-parameter list")


def _top_level_split(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for c in text:
        depth += _DEPTH.get(c, 0)
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    return [p.strip() for p in [*parts, cur] if p.strip()]


def without_type_params(src: str) -> str:
    """PEP 695 type parameters → module-level TypeVar/ParamSpec/TypeVarTuple (bounds dropped), for Python < 3.12."""
    declared: dict[str, str] = {}
    while m := _GENERIC.search(src):
        open_at = m.end() - 1
        close_at = _closing(src, open_at)
        names = []
        for param in _top_level_split(src[open_at + 1 : close_at]):
            name = param.split(":")[0].split("=")[0].strip()
            kind = "ParamSpec" if name.startswith("**") else "TypeVarTuple" if name.startswith("*") else "TypeVar"
            declared[name.lstrip("*")] = kind
            names.append(name.lstrip("*"))
        rest = src[close_at + 1 :]
        generic = f"__import__('typing').Generic[{', '.join(names)}]"
        if m["kw"] == "class":
            rest = f"({generic}, {rest[1:]}" if rest.startswith("(") else f"({generic}){rest}"
        src = src[:open_at] + rest
    if not declared:
        return src
    lines = src.split("\n")
    at = max((i + 1 for i, line in enumerate(lines) if line.startswith("from __future__")), default=0)
    lines.insert(at, "; ".join(f"{n} = __import__('typing').{k}({n!r})" for n, k in declared.items()))
    return "\n".join(lines)


class _Loader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname):  # type: ignore[override]  # no bytecode cache: it would hold the unrewritten code
        path = self.get_filename(fullname)
        return compile(without_type_params(self.get_data(path).decode("utf-8")), path, "exec", dont_inherit=True)


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, root: Path):
        self.root = str(root.resolve())

    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] != "spd":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path or [self.root])
        if spec is not None and spec.origin and spec.origin.startswith(self.root) and spec.origin.endswith(".py"):
            spec.loader = _Loader(fullname, spec.origin)
        return spec


def install_compat(reference: Path) -> None:
    sys.path.insert(0, str(reference))
    if sys.version_info < (3, 12):
        import typing_extensions

        if not hasattr(typing, "override"):
            typing.override = typing_extensions.override  # type: ignore[attr-defined]
        sys.meta_path.insert(0, _Finder(reference))


def run(job: dict) -> dict:
    import torch

    install_compat(Path(job["reference"]))
    torch.set_num_threads(job["threads"])
    import spd.run_spd as run_spd
    from spd.configs import Config
    from torch.utils.data import DataLoader
    from transformers import AutoModelForCausalLM

    target = AutoModelForCausalLM.from_pretrained(job["model_dir"], dtype=torch.float32).eval()
    config = Config(**job["config"])
    init = torch.load(job["init"])
    batches = torch.load(job["batches"])

    class CopiedInit(run_spd.ComponentModel):  # type: ignore[misc,valid-type]
        """The reference's ComponentModel, with our initial U, V and CI-function weights copied in after its own init."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            with torch.no_grad():
                for name, comp in self.components.items():
                    comp.V.copy_(init["components"][name]["V"])
                    comp.U.copy_(init["components"][name]["U"])
                for name, fn in self.ci_fns.items():
                    linears = [layer for layer in fn.layers if hasattr(layer, "W")]
                    for layer, (w, b) in zip(linears, init["ci_fns"][name], strict=True):
                        layer.W.copy_(w)
                        layer.b.copy_(b)

    records: dict[int, dict] = {}
    stamps: list[float] = []
    cpu_stamps: list[float] = []
    schedule = run_spd.get_scheduled_value

    def stamped_schedule(*args, **kwargs):
        stamps.append(time.perf_counter())
        cpu_stamps.append(time.process_time())
        return schedule(*args, **kwargs)

    def keep_log(data, step, out_dir):
        records.setdefault(step, {}).update({k: float(v) for k, v in data.items() if isinstance(v, int | float)})

    run_spd.ComponentModel = CopiedInit
    run_spd.get_scheduled_value = stamped_schedule
    run_spd.local_log = keep_log
    # optimize() takes one batch for the batch shape before step 0, then one per step (steps + 1 of them).
    train: DataLoader = DataLoader(cast(Any, [batches[0], *batches]), batch_size=None)
    with tempfile.TemporaryDirectory() as out:
        run_spd.optimize(target, config, "cpu", train, DataLoader(cast(Any, [batches[0]]), batch_size=None), n_eval_steps=1, out_dir=Path(out))
    steps = [{k.removeprefix("train/"): v for k, v in records[s].items() if k.startswith("train/")} for s in sorted(records) if s < config.steps]
    return {"steps": steps, "step_start_wall": stamps, "step_start_cpu": cpu_stamps, "python": sys.version.split()[0], "torch": torch.__version__}


if __name__ == "__main__":
    job = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    Path(job["out"]).write_text(json.dumps(run(job)), encoding="utf-8")
