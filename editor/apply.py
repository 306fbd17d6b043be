"""The only code that changes weights: apply a weight delta in float32, check it, and revert it exactly.

Every edit is a low-rank ΔW per matrix (`editor.edit.Edit.factors`). The new weight is computed in
float32 from the original and stored in the model's dtype; the originals are kept, so `revert()`
restores the model bit for bit. Removing rank-1 components S_l of matrix l is
ΔW_l = −Σ_{c ∈ S_l} u_c v_cᵀ (nn.Linear layout): `removal_factors`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from decompose.component_model import ComponentModel
from decompose.targets import TargetMatrix
from editor.errors import EditorError

Factors = dict[str, tuple[Tensor, Tensor]]  # module name → (A: r×d_in, B: d_out×r), float32, ΔW = B·A


@dataclass(frozen=True)
class ComponentRef:
    """One rank-1 component of a decomposition: its matrix and its index there."""

    module: str
    index: int


def removal_factors(cm: ComponentModel, removed: list[ComponentRef]) -> Factors:
    """Per module (A: r×d_in, B: d_out×r), float32 on the CPU, B·A = −Σ_{c∈S} u_c v_cᵀ: rows of A are v_cᵀ,
    columns of B are −u_c (S sorted and deduplicated). The edit and its LoRA adapter both come from here."""
    by_module: dict[str, set[int]] = {}
    for r in removed:
        by_module.setdefault(r.module, set()).add(r.index)
    factors = {}
    with torch.no_grad():
        for name, idx in by_module.items():
            comp = cm.comp(name)
            sel = torch.tensor(sorted(idx), device=comp.V.device)
            factors[name] = (comp.V[:, sel].T.float().cpu().contiguous(), (-comp.U[sel].T).float().cpu().contiguous())
    return factors


def removal_delta(cm: ComponentModel, removed: list[ComponentRef]) -> dict[str, Tensor]:
    """ΔW per module, float32 (d_out, d_in): minus the sum of the removed rank-1 components."""
    return factor_delta(removal_factors(cm, removed))


def factor_delta(factors: Factors) -> dict[str, Tensor]:
    """ΔW = B·A per module, float32."""
    return {n: b @ a for n, (a, b) in factors.items()}


@dataclass
class AppliedDelta:
    """A delta in place on a model, with what is needed to undo it exactly."""

    targets: dict[str, TargetMatrix]
    originals: dict[str, Tensor] = field(default_factory=dict)

    def revert(self) -> None:
        for name, w in self.originals.items():
            self.targets[name].set_weight(w)
        self.originals.clear()


def apply_delta(targets: dict[str, TargetMatrix], delta: dict[str, Tensor]) -> AppliedDelta:
    """W ← W + ΔW for each module in `delta`; raises (and changes nothing) if a result is not finite."""
    unknown = set(delta) - set(targets)
    if unknown:
        raise EditorError(f"edit names modules the model does not have: {', '.join(sorted(unknown))}")
    new = {}
    for name, d in delta.items():
        w = targets[name].weight()
        updated = (w.detach().float() + d.to(w.device)).to(w.dtype)
        if not torch.isfinite(updated).all():
            raise EditorError(f"edit of {name} gives non-finite weights; nothing was changed")
        new[name] = updated
    applied = AppliedDelta(targets)
    for name, w in new.items():
        applied.originals[name] = targets[name].weight().detach().clone()
        targets[name].set_weight(w)
    return applied


def resolve_named(model, names) -> dict[str, TargetMatrix]:
    """The model's matrices with these exact module names (a missing one is an EditorError naming it)."""
    from decompose.targets import resolve_targets

    if not names:
        return {}
    modules = dict(model.named_modules())
    missing = sorted(set(names) - set(modules))
    if missing:
        raise EditorError(f"edit names modules the model does not have: {', '.join(missing)}")
    return {t.name: t for t, _ in resolve_targets(model, dict.fromkeys(names, 1))}


def apply_factors(model, factors: Factors) -> AppliedDelta:
    """W ← W + B·A for each named matrix of `model`; the returned record reverts it exactly."""
    return apply_delta(resolve_named(model, factors), factor_delta(factors))
