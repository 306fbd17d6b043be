"""Causal verification: remove candidates one at a time from the real weights and keep those that hurt
the forget set while the retained data's output distribution stays within budget.

Removing component c of matrix l from the weights (W − u_c v_cᵀ) is exactly the component model with
that mask at 0, every other mask at 1 and the Δ path on (tested), so the search edits weights
directly: one plain forward per measurement, no hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from editor.apply import RemovedComponent, apply_delta, component_delta
from editor.select import Candidate

Batches = list[tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class CurvePoint:
    tried: int  # candidates tried so far
    removed: int  # components removed so far
    module: str
    index: int
    forget_ce: float
    retain_kl: float
    accepted: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SearchResult:
    selected: list[Candidate]
    curve: list[CurvePoint]
    base_forget_ce: float
    forget_ce: float
    retain_kl: float


def _token_mask(mask: Tensor) -> Tensor:
    """Positions whose next token is scored: real tokens followed by a real token."""
    return (mask[:, :-1] * mask[:, 1:]).bool()


@torch.no_grad()
def forget_ce(model, batches: Batches) -> float:
    total, count = 0.0, 0
    for ids, mask in batches:
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        keep = _token_mask(mask)
        nll = torch.nn.functional.cross_entropy(logits[keep], ids[:, 1:][keep], reduction="sum")
        total, count = total + nll.item(), count + int(keep.sum())
    return total / max(count, 1)


class RetainKL:
    """KL(p_original ‖ p_edited) per retained token, against log-probs cached once from the unedited model."""

    @torch.no_grad()
    def __init__(self, model, batches: Batches):
        self.batches = batches
        self.reference = [torch.log_softmax(model(input_ids=i, attention_mask=m).logits.float(), -1)[m.bool()] for i, m in batches]

    @torch.no_grad()
    def __call__(self, model) -> float:
        total, count = 0.0, 0
        for (ids, mask), ref in zip(self.batches, self.reference):
            logq = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)[mask.bool()]
            total += (ref.exp() * (ref - logq)).sum().item()
            count += ref.shape[0]
        return total / max(count, 1)


def causal_search(
    cm,
    candidates: list[Candidate],
    forget: Batches,
    retain: Batches,
    max_retain_kl: float | None,
    max_components: int | None,
    max_tries: int,
    min_gain: float = 1e-4,
    on_try: Callable[[CurvePoint], None] | None = None,
) -> SearchResult:
    """Greedy over ranked candidates. Budget mode: accept a candidate if it raises forget CE by at least
    `min_gain` and keeps retain KL ≤ max_retain_kl. Top-K mode (max_components): accept the first K.
    The model is left unedited on return."""
    model = cm.model
    retain_kl = RetainKL(model, retain)
    base = current = forget_ce(model, forget)
    kl_now = 0.0
    selected: list[Candidate] = []
    curve: list[CurvePoint] = []
    applied = []
    try:
        for tried, cand in enumerate(candidates[:max_tries], start=1):
            if max_components is not None and len(selected) >= max_components:
                break
            step = apply_delta(cm.targets, component_delta(cm, [RemovedComponent(cand.module, cand.index)]))
            ce, kl = forget_ce(model, forget), retain_kl(model)
            if max_components is not None:
                ok = True
            else:
                ok = kl <= max_retain_kl and ce >= current + min_gain  # type: ignore[operator]
            point = CurvePoint(tried, len(selected) + int(ok), cand.module, cand.index, ce, kl, ok)
            curve.append(point)
            if on_try is not None:
                on_try(point)
            if ok:
                applied.append(step)
                selected.append(cand)
                current, kl_now = ce, kl
            else:
                step.revert()
    finally:
        for step in reversed(applied):
            step.revert()
    return SearchResult(selected, curve, base, current, kl_now)
