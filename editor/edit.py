"""The one shape every method returns: an `Edit` — low-rank weight changes, what they are in words, and why.

Whatever made it (VPD's component selection, gradient ascent, a task vector, ...), an edit is:

* `factors`: per matrix, LoRA factors (A: r×d_in, B: d_out×r) with ΔW = B·A, float32 on the CPU. The
  checkpoint, the PEFT adapter and `apply` all come from these, so they agree exactly;
* `summary` and `components`: what changed, in words ("3 rank-1 components removed", "full update at
  rank 1792 over 28 matrices") and, for edits of a decomposition, each component with its change and
  the tokens it fires on and promotes;
* `log`: the method's own record (the selection's trade-off curve, a training log), and the metrics
  and data it was made and measured with.

`manifest()` is the one `edit.json` writer; `editor.card.model_card` turns it into the model card.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import Tensor

from editor.apply import AppliedDelta, Factors, factor_delta
from lmkit.files import versions

FORMAT = "editor-edit/2"


@dataclass(frozen=True)
class ComponentChange:
    """One rank-1 component of the decomposition that an edit changes, and how.

    `change` is "removed" (u_c v_cᵀ subtracted), "scaled" (the component's prefactor set to `scale`,
    W + (s − 1) u_c v_cᵀ), "rewritten" (a learned new write vector u_c + δ_c) or "write-projected" (u_c's
    projection on the forget tokens' unembedding removed). `relative_change` is ‖Δu_c‖ / ‖u_c‖ (1 for a
    removal). `stats` holds what the selection measured (mean CI and firing density on both sides, scores)."""

    module: str
    index: int
    change: str
    scale: float | None = None
    relative_change: float = 1.0
    norm: float = 0.0  # ‖u_c v_cᵀ‖_F before the edit
    stats: dict[str, float] = field(default_factory=dict)
    fires_on: list[str] = field(default_factory=list)
    promotes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Edit:
    """A weight edit and its record. Made by a method (`editor.methods`), measured by `editor.forget`."""

    method: str
    summary: str
    settings: dict[str, Any]
    strength: dict[str, Any]  # {"field": the settings field swept as the strength, "value": its value}
    factors: Factors
    components: list[ComponentChange] = field(default_factory=list)
    log: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the method up to this edit
    decomposition: dict[str, Any] | None = None  # {"name", "path", "sha256"} for edits of a decomposition
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # {"before": {...}, "after": {...}}
    data: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)  # {"source", "fingerprint_before", "fingerprint_after"}

    def delta(self) -> dict[str, Tensor]:
        """ΔW per matrix (d_out, d_in), float32."""
        return factor_delta(self.factors)

    @property
    def rank(self) -> int:
        return sum(int(a.shape[0]) for a, _ in self.factors.values())

    def changed_modules(self) -> dict[str, dict[str, float]]:
        return {n: {"rank": int(a.shape[0]), "delta_frobenius": float((b @ a).norm())} for n, (a, b) in sorted(self.factors.items())}

    def components_per_module(self) -> dict[str, int]:
        return dict(sorted(Counter(c.module for c in self.components).items()))

    def apply(self, model) -> AppliedDelta:
        """Make the edit on `model` in place; `.revert()` on the result undoes it bit for bit."""
        from editor.apply import apply_factors

        return apply_factors(model, self.factors)

    def manifest(self) -> dict[str, Any]:
        """The `edit.json` record: everything needed to say what changed, why, and how it was measured."""
        return {
            "format": FORMAT,
            "method": self.method,
            "summary": self.summary,
            "model": self.model,
            "decomposition": self.decomposition,
            "data": self.data,
            "settings": self.settings,
            "strength": self.strength,
            "changed_modules": self.changed_modules(),
            "components_per_module": self.components_per_module(),
            "components": [c.to_dict() for c in self.components],
            **self.log,
            "metrics": self.metrics,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 2),
            "versions": versions(),
        }


def rank_summary(factors: Factors) -> str:
    """The words for an edit that is not a set of components: "full update at rank r over m matrices"."""
    rank = sum(int(a.shape[0]) for a, _ in factors.values())
    return f"update of rank {rank} over {len(factors)} matrices"
