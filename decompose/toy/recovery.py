"""Recovery score of a decomposition against a toy model's ground truth.

Every (matrix, mechanism) pair of the toy model is matched to the alive component whose weight in that
matrix has the highest cosine similarity with the mechanism's part of the weight (flattened matrices);
the score is the mean of those best cosines. A method's components are given per matrix as a stack
(K, d_out, d_in): rank-1 subcomponents u_c v_cᵀ for SPD/VPD, each component's piece in that matrix for
APD. Extra alive components: alive components minus mechanisms, counted in the method's own unit
(subcomponents summed over matrices for SPD/VPD, whole components for APD).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from decompose.toy.models import Toy

MATCHED_COSINE = 0.9  # a mechanism counts as recovered when its best cosine reaches this


@dataclass
class Recovery:
    mean_cosine: float  # mean over (matrix, mechanism) pairs of the best cosine
    min_cosine: float
    recovered: int  # pairs with best cosine ≥ MATCHED_COSINE
    pairs: int
    alive: int
    mechanisms: int
    distinct: bool  # every mechanism of a matrix matched to a different component

    @property
    def extra_alive(self) -> int:
        return self.alive - self.mechanisms


def best_cosines(components: Tensor, mechanisms: dict[int, Tensor]) -> tuple[Tensor, Tensor]:
    """(best cosine, index of the best component) per mechanism, in sorted feature order."""
    flat = torch.nn.functional.normalize(components.reshape(components.shape[0], -1).float(), dim=1)
    truth = torch.stack([mechanisms[f].flatten().float() for f in sorted(mechanisms)])
    truth = torch.nn.functional.normalize(truth, dim=1)
    cos = truth @ flat.T  # (mechanisms, components)
    best, idx = cos.max(1)
    return best, idx


def recovery(toy: Toy, components: dict[str, Tensor], alive: dict[str, Tensor] | Tensor, mechanisms_unit: str = "matrix") -> Recovery:
    """Score `components` (matrix → (K, d_out, d_in)) against the toy's mechanisms.

    `alive`: per matrix a (K,) bool (SPD/VPD), or one (K,) bool shared by every matrix (APD components).
    `mechanisms_unit`: "matrix" counts mechanisms per matrix (SPD/VPD); "component" counts features (APD).
    """
    mech = toy.mechanisms()
    bests, distinct = [], True
    for name, parts in mech.items():
        keep = alive[name] if isinstance(alive, dict) else alive
        comps = components[name][keep]
        if comps.shape[0] == 0 or not parts:
            bests.append(torch.zeros(len(parts)))
            distinct = distinct and not parts
            continue
        best, idx = best_cosines(comps, parts)
        bests.append(best)
        distinct = distinct and len(set(idx.tolist())) == len(parts)
    allb = torch.cat(bests)
    if isinstance(alive, dict):
        n_alive = int(sum(int(a.sum()) for a in alive.values()))
    else:
        n_alive = int(alive.sum())
    n_mech = sum(len(p) for p in mech.values()) if mechanisms_unit == "matrix" else toy.n_mechanisms
    return Recovery(
        mean_cosine=float(allb.mean()),
        min_cosine=float(allb.min()),
        recovered=int((allb >= MATCHED_COSINE).sum()),
        pairs=int(allb.numel()),
        alive=n_alive,
        mechanisms=n_mech,
        distinct=distinct,
    )
