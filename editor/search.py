"""Causal verification: remove ranked candidates from the real weights, prefix by prefix, and measure.

Removing component c of matrix l from the weights (W − u_c v_cᵀ) is exactly the component model with
that mask at 0, every other mask at 1 and the Δ path on (tested), so the check edits weights
directly: one plain forward per measurement, no hooks. Each prefix of the ranking is a point on the
trade-off curve (forget loss vs retain KL); the selection is the prefix that hurts the forget set most
within the retain budget, or the first K.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace

import torch
from torch import Tensor

from editor.apply import ComponentRef, apply_delta, removal_delta
from editor.select import Candidate
from lmkit.nll import next_token_nll
from lmkit.tokens import Batches


def target_weights(token_weights: Tensor, ids: Tensor, keep: Tensor) -> Tensor:
    """Each scored position's weight: the per-vocabulary weight of the token it predicts (0 where not scored)."""
    return token_weights[ids[:, 1:]] * keep


def weighted_forget_loss(model, ids: Tensor, mask: Tensor, token_weights: Tensor) -> Tensor:
    """One batch's mean next-token NLL weighted by the per-vocabulary weight of each target (differentiable)."""
    nll, keep = next_token_nll(model, ids, mask)
    w = target_weights(token_weights, ids, keep)
    return (nll * w).sum() / w.sum().clamp(min=1e-8)


@torch.no_grad()
def forget_losses(model, batches: Batches, token_weights: Tensor) -> tuple[float, float]:
    """(weighted, plain) mean next-token NLL over `batches`; the weight is a per-vocabulary weight of the target."""
    sums = torch.zeros(4, dtype=torch.float64)
    for ids, mask in batches:
        nll, keep = next_token_nll(model, ids, mask)
        w = target_weights(token_weights, ids, keep)
        sums += torch.stack([(nll * w).sum(), w.sum(), nll.sum(), keep.sum()]).double()
    return float(sums[0] / sums[1].clamp(min=1e-8)), float(sums[2] / sums[3].clamp(min=1e-8))


class RetainReference:
    """The original model's log-probs on retained batches, cached once; KL(p_original ‖ p_edited) against
    them, averaged per document first so that long documents (WikiText) do not outvote short ones (tweets)."""

    @torch.no_grad()
    def __init__(self, model, batches: Batches):
        self.batches = batches
        self.logp = [torch.log_softmax(model(input_ids=i, attention_mask=m).logits.float(), -1) for i, m in batches]

    def kl(self, model, j: int) -> Tensor:
        ids, mask = self.batches[j]
        ref = self.logp[j]
        logq = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
        per_token = (ref.exp() * (ref - logq)).sum(-1) * mask
        return (per_token.sum(1) / mask.sum(1).clamp(min=1)).mean()

    @torch.no_grad()
    def mean_kl(self, model) -> float:
        docs = [b[0].shape[0] for b in self.batches]
        return sum(float(self.kl(model, j)) * n for j, n in enumerate(docs)) / max(sum(docs), 1)


@dataclass(frozen=True)
class CurvePoint:
    at: int  # where on the curve: components removed (a prefix of the ranking) or training steps taken
    forget_loss: float  # weighted by forget-specific tokens (the optimised quantity)
    forget_ce: float  # plain mean NLL on the forget batches
    retain_kl: float
    within_budget: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SearchResult:
    """The curve an edit kind explored (checked on the real weights) and the point chosen on it."""

    selected: list[Candidate]  # the components the chosen edit changes
    curve: list[CurvePoint]
    base: CurvePoint  # nothing changed
    chosen: CurvePoint | None
    axis: str = "removed"  # what `CurvePoint.at` counts

    @property
    def final(self) -> CurvePoint:
        return self.chosen or self.base

    def to_dict(self) -> dict:
        return {"axis": self.axis, "base": self.base.to_dict(), "final": self.final.to_dict(), "curve": [p.to_dict() for p in self.curve]}


def measure_deltas(
    cm,
    deltas: Iterable[tuple[int, dict[str, Tensor]]],
    forget: Batches,
    retain: Batches,
    token_weights: Tensor,
    on_point: Callable[[CurvePoint], None] | None = None,
) -> tuple[CurvePoint, list[CurvePoint]]:
    """(nothing changed, each (at, ΔW) applied in turn), measured on the real weights: forget loss, forget
    CE and retain KL. The model is left unedited on return; `within_budget` is True until a budget is set."""
    reference = RetainReference(cm.model, retain)

    def point(at: int) -> CurvePoint:
        (f, ce), kl = forget_losses(cm.model, forget, token_weights), reference.mean_kl(cm.model)
        return CurvePoint(at, f, ce, kl, True)

    base = point(0)
    curve = []
    for at, delta in deltas:
        step = apply_delta(cm.targets, delta)
        try:
            curve.append(point(at))
        finally:
            step.revert()
        if on_point is not None:
            on_point(curve[-1])
    return base, curve


def measure_prefixes(
    cm,
    ranked: list[Candidate],
    sizes: list[int],
    forget: Batches,
    retain: Batches,
    token_weights: Tensor,
    on_point: Callable[[CurvePoint], None] | None = None,
) -> tuple[CurvePoint, list[CurvePoint]]:
    """`measure_deltas` for each prefix ranked[:k], k in `sizes`, removed from the weights."""
    refs = [ComponentRef(c.module, c.index) for c in ranked]
    return measure_deltas(cm, ((k, removal_delta(cm, refs[:k])) for k in sizes), forget, retain, token_weights, on_point)


def with_budget(curve: list[CurvePoint], max_retain_kl: float | None) -> list[CurvePoint]:
    return [replace(p, within_budget=max_retain_kl is None or p.retain_kl <= max_retain_kl) for p in curve]


def best_within(base: CurvePoint, curve: list[CurvePoint]) -> CurvePoint | None:
    """The point that raises the forget loss most among those within budget (ties: the smaller `at`)."""
    ok = [p for p in curve if p.within_budget and p.forget_loss > base.forget_loss]
    return max(ok, key=lambda p: (p.forget_loss, -p.at), default=None)


def choose_point(base: CurvePoint, curve: list[CurvePoint], max_retain_kl: float | None) -> tuple[list[CurvePoint], CurvePoint | None]:
    """(the curve marked for the budget, the point kept): the largest forget loss within `max_retain_kl`,
    or without a budget the last point of the curve."""
    marked = with_budget(curve, max_retain_kl)
    return marked, (marked[-1] if marked else None) if max_retain_kl is None else best_within(base, marked)


def choose_prefix(ranked: list[Candidate], base: CurvePoint, curve: list[CurvePoint], max_retain_kl: float | None) -> SearchResult:
    """Budget mode keeps the prefix with the largest forget loss among those within `max_retain_kl`;
    without a budget, the longest prefix."""
    marked, best = choose_point(base, curve, max_retain_kl)
    return SearchResult(ranked[: best.at] if best else [], marked, base, best)


def verify_prefixes(
    cm,
    ranked: list[Candidate],
    sizes: list[int],
    forget: Batches,
    retain: Batches,
    token_weights: Tensor,
    max_retain_kl: float | None,
    on_point: Callable[[CurvePoint], None] | None = None,
) -> SearchResult:
    """`measure_prefixes`, then `choose_prefix` for one budget."""
    base, curve = measure_prefixes(cm, ranked, sizes, forget, retain, token_weights, on_point)
    return choose_prefix(ranked, base, curve, max_retain_kl)
