"""An `editor forget` output seen through the decomposition: the same prompt's graph after the edit.

The edited model's weights are W' = W + ΔW. For the graph, the edit is put on the original model (which the
decomposition fits) and expressed in components where it can be: the write vectors of the components the
edit names absorb the part of ΔW in the span of their read vectors (least squares: ΔW ≈ Σ_c Δu_c v_cᵀ, so a
removed component gets u_c + Δu_c = 0 and writes nothing), and the rest of ΔW stays in Δ. The edited
forward is exactly the edited model's, whatever the method.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor

from editor.apply import apply_delta
from editor.errors import EditorError


def edit_delta(cm, manifest: dict, edit_dir: Path) -> dict[str, Tensor]:
    """ΔW = W_edited − W per changed matrix, from the edited checkpoint in `edit_dir`."""
    from decompose.targets import fingerprint
    from editor.methods.base import target_matrices
    from editor.model_io import load_model

    before = manifest.get("model", {}).get("fingerprint_before")
    if before and fingerprint(list(target_matrices(cm.model).values())) != before:
        raise EditorError(f"--edit {edit_dir} was made from another model ({manifest['model'].get('source', '?')}); pass that one with --model")
    edited, _ = load_model(str(edit_dir))
    mine, theirs = target_matrices(cm.model), target_matrices(edited)
    return {n: (theirs[n].weight().detach().float() - mine[n].weight().detach().float()) for n in manifest.get("changed_modules", {}) if n in mine}


def component_shifts(cm, manifest: dict, delta: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
    """module → (indices, ΔU rows): the least-squares write change of the components the edit names."""
    by_module: dict[str, list[int]] = {}
    for c in manifest.get("components", []):
        if c["module"] in cm.targets and c["module"] in delta:
            by_module.setdefault(c["module"], []).append(int(c["index"]))
    out = {}
    for m, idx in by_module.items():
        sel = torch.tensor(sorted(set(idx)))
        V = cm.comp(m).V.detach().float()[:, sel]  # (d_in, S)
        dU = torch.linalg.lstsq(V, delta[m].T).solution  # (S, d_out): ΔWᵀ ≈ V·ΔU
        out[m] = (sel, dU)
    return out


@contextmanager
def edited(cm, manifest: dict, delta: dict[str, Tensor]) -> Iterator[None]:
    """Within the context, the model holds the edit and the named components' write vectors absorb it."""
    shifts = component_shifts(cm, manifest, delta)
    applied = apply_delta(cm.targets, delta)
    saved = {m: cm.comp(m).U.detach().clone() for m in shifts}
    try:
        with torch.no_grad():
            for m, (sel, dU) in shifts.items():
                cm.comp(m).U[sel] += dU.to(cm.comp(m).U.dtype)
        yield
    finally:
        with torch.no_grad():
            for m, U in saved.items():
                cm.comp(m).U.copy_(U)
        applied.revert()


def edited_keys(manifest: dict) -> dict[tuple[str, int], str]:
    """(module, index) → change ("removed", "rewritten", ...) for the components an edit names."""
    return {(c["module"], int(c["index"])): c.get("change", "changed") for c in manifest.get("components", [])}
