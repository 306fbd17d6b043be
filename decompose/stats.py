"""Per-component statistics of a decomposition on a dataset: mean causal importance and firing density.

All forward passes for selection happen here; selection itself is a pure function of these numbers.
Statistics skip padding and the BOS position (its CI is the same for every document).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from decompose.sigmoids import lower_leaky_hard_sigmoid


@dataclass
class ComponentStats:
    mean_ci: dict[str, Tensor]  # (C,) per module: mean lower-leaky CI over tokens
    density: dict[str, Tensor]  # (C,) per module: fraction of tokens with CI > threshold
    tokens: int


class CIBatch(NamedTuple):
    ids: Tensor  # (B, T), on the CI function's device
    mask: Tensor  # (B, T) attention mask
    keep: Tensor  # (B, T) bool: the positions statistics count (real tokens, BOS excluded)
    z: dict[str, Tensor]  # (B, T, C) per module: the CI function's output before lower_leaky_hard_sigmoid


@torch.no_grad()
def ci_batches(cm, ci_fn, batches: Iterable[tuple[Tensor, Tensor]]) -> Iterator[CIBatch]:
    """Each (input_ids, attention_mask) batch with its CI function output, from one ordinary forward that records
    every target matrix's input. The sigmoid is left to the caller, so no caller holds every module's CI twice;
    a batch's `z` is emptied when the next is asked for, so two batches' CI are never held at once."""
    device = next(ci_fn.parameters()).device
    for ids, mask in batches:
        ids, mask = ids.to(device), mask.to(device)
        with cm.caching_inputs() as inputs:
            cm.model(input_ids=ids, attention_mask=mask)
        keep = mask.bool().clone()
        keep[:, 0] = False
        z = ci_fn(inputs)
        yield CIBatch(ids, mask, keep, z)
        z.clear()


@torch.no_grad()
def component_stats(
    cm,
    ci_fn,
    batches: list[tuple[Tensor, Tensor]],
    threshold: float = 0.0,
    alpha: float = 0.01,
    on_batch: Callable[[], None] | None = None,
) -> ComponentStats:
    """Accumulate CI statistics of every component over (input_ids, attention_mask) batches."""
    device = next(ci_fn.parameters()).device
    sums = {n: torch.zeros(cm.C(n), dtype=torch.float64, device=device) for n in cm.names}
    fired = {n: torch.zeros(cm.C(n), dtype=torch.float64, device=device) for n in cm.names}
    tokens = 0
    for _, _, keep, zs in ci_batches(cm, ci_fn, batches):
        for name, z in zs.items():
            g = lower_leaky_hard_sigmoid(z, alpha)[keep]  # (tokens, C)
            sums[name] += g.sum(0, dtype=torch.float64)
            fired[name] += (g > threshold).sum(0, dtype=torch.float64)
        tokens += int(keep.sum())
        if on_batch is not None:
            on_batch()
    n = max(tokens, 1)
    return ComponentStats(
        mean_ci={k: (v / n).float().cpu() for k, v in sums.items()},
        density={k: (v / n).float().cpu() for k, v in fired.items()},
        tokens=tokens,
    )
