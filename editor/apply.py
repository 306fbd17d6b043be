"""The only code that changes weights: apply a weight delta in float32, check it, and revert it exactly.

An edit removes rank-1 components: ΔW_l = −Σ_{c ∈ S_l} u_c v_cᵀ (nn.Linear layout). The new weight is
computed in float32 from the original and stored in the model's dtype; the originals are kept, so
`revert()` restores the model bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from decompose.component_model import ComponentModel
from decompose.targets import TargetMatrix
from editor.errors import EditorError


@dataclass(frozen=True)
class RemovedComponent:
    module: str
    index: int


def removed_factors(cm: ComponentModel, removed: list[RemovedComponent]) -> dict[str, tuple[Tensor, Tensor]]:
    """Per module (A: r×d_in, B: d_out×r), float32, B·A = −Σ_{c∈S} u_c v_cᵀ: rows of A are v_cᵀ,
    columns of B are −u_c (S sorted and deduplicated). The edit and its LoRA adapter both come from here."""
    by_module: dict[str, set[int]] = {}
    for r in removed:
        by_module.setdefault(r.module, set()).add(r.index)
    factors = {}
    with torch.no_grad():
        for name, idx in by_module.items():
            comp = cm.comp(name)
            sel = torch.tensor(sorted(idx), device=comp.V.device)
            factors[name] = (comp.V[:, sel].T.float().contiguous(), (-comp.U[sel].T).float().contiguous())
    return factors


def component_delta(cm: ComponentModel, removed: list[RemovedComponent]) -> dict[str, Tensor]:
    """ΔW per module, float32 (d_out, d_in): minus the sum of the removed rank-1 components."""
    return {name: b @ a for name, (a, b) in removed_factors(cm, removed).items()}


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
