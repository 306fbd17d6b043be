"""A finished decomposition's quality as two markdown tables, from its final evaluation (decomposition.json).

The first gives the evaluation's cross-entropies and KLs (target, unmasked, CI-masked, stochastic, rounded,
all-zero masks, PGD attack), the mean L0 and the alive components; the second, per matrix, alive
components / C and mean L0 per token. `decompose.run` writes it as quality.md beside decomposition.json;
`python -m decompose.quality DIR` prints it for any decomposition, older ones included.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

QUALITY = "quality.md"

_LAYER = re.compile(r"^(.*?\.(\d+))\.(.+)$")  # "model.layers.3.mlp.up_proj" → ("model.layers.3", "3", "mlp.up_proj")


def _f(x: float | None, fmt: str) -> str:
    return "–" if x is None else format(x, fmt)


def _count(x: float | None) -> str:
    """A count; data-parallel runs average it over ranks, so it may arrive as a float."""
    return "–" if x is None else f"{round(x):,}"


def summary_rows(metrics: dict, modules: list[dict]) -> list[tuple[str, str]]:
    """(measure, value) rows of the final evaluation; a measure the evaluation did not compute reads "–"."""
    m = metrics.get
    total_c = sum(mod["C"] for mod in modules)
    rows = [
        ("target CE", _f(m("ce/target"), ".3f")),
        ("unmasked CE (all masks 1, no Δ)", f"{_f(m('ce/unmasked'), '.3f')} (KL {_f(m('kl/unmasked'), '.3f')})"),
        ("CI-masked CE (masks = CI, no Δ)", f"{_f(m('ce/ci_masked'), '.3f')} (KL {_f(m('kl/ci_masked'), '.3f')})"),
        ("stochastic-masked CE", f"{_f(m('ce/stochastic'), '.3f')} (KL {_f(m('kl/stochastic'), '.3f')})"),
        ("rounded-CI CE (masks 1[CI > 0])", _f(m("ce/rounded"), ".3f")),
        ("all-zero masks CE", _f(m("ce/zero"), ".2f")),
        ("PGD-attack KL", _f(m("kl/pgd"), ".3f")),
        ("mean L0 per token per matrix", f"{_f(m('l0/mean_per_matrix'), '.2f')} ({_f(m('l0/total'), '.1f')} of {total_c:,} per token in total)"),
        ("alive components", f"{_count(m('alive/total'))} of {total_c:,}"),
    ]
    target, ci, zero = m("ce/target"), m("ce/ci_masked"), m("ce/zero")
    if target is not None and ci is not None and zero is not None and zero != target:
        rows.append(("CE gap recovered by the CI-masked model ((zero − CI-masked) / (zero − target))", f"{(zero - ci) / (zero - target):.1%}"))
    return rows


def per_matrix_rows(metrics: dict, modules: list[dict]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Columns (matrix names within a layer) and one row per layer of "alive/C · L0" cells; modules outside a
    numbered layer get a row each."""
    columns: list[str] = []
    layers: dict[str, dict[str, str]] = {}
    for mod in modules:
        name = mod["name"]
        cell = f"{_count(metrics.get(f'alive/{name}'))}/{mod['C']} · {_f(metrics.get(f'l0/{name}'), '.1f')}"
        hit = _LAYER.match(name)
        layer, col = (hit.group(2), hit.group(3).rsplit(".", 1)[-1]) if hit else (name, "matrix")
        if col not in columns:
            columns.append(col)
        layers.setdefault(layer, {})[col] = cell
    return columns, [(layer, [cells.get(c, "") for c in columns]) for layer, cells in layers.items()]


def quality_markdown(manifest: dict) -> str:
    metrics, modules = manifest.get("metrics") or {}, manifest.get("modules") or []
    steps = manifest.get("steps") or {}
    lines = [
        f"# Decomposition quality: {manifest.get('name', '?')}",
        "",
        f"Final evaluation after {steps.get('warmup', 0)} warmup + {steps.get('main', '?')} main steps"
        f" ({manifest.get('seconds_this_process', '?')} s in its last process), on the run's fixed evaluation batches.",
        "",
        "| measure | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in summary_rows(metrics, modules)),
        "",
        "Alive components / C · mean L0 per token, per matrix:",
        "",
    ]
    columns, rows = per_matrix_rows(metrics, modules)
    lines += ["| layer | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {layer} | " + " | ".join(cells) + " |" for layer, cells in rows]
    return "\n".join(lines) + "\n"


def write_quality(directory: Path, manifest: dict) -> Path:
    path = Path(directory) / QUALITY
    path.write_text(quality_markdown(manifest), encoding="utf-8")
    return path


def main(argv: list[str]) -> int:
    from decompose.errors import DecompositionError
    from decompose.io import read_manifest

    if len(argv) != 1:
        print("usage: python -m decompose.quality DECOMPOSITION_DIR", file=sys.stderr)
        return 2
    try:
        manifest = read_manifest(Path(argv[0]))
    except DecompositionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(quality_markdown(manifest), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
