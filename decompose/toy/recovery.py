"""Recovery scores of a decomposition against a toy model's ground truth.

Cosine: every (matrix, mechanism) pair of the toy model is matched to the alive component whose weight
in that matrix has the highest cosine similarity with the mechanism's part of the weight (flattened;
for a residual MLP's mlp_in both are first mapped to feature coordinates, `Toy.feature_read`); the
score is the mean of those best cosines. A method's components are given per matrix as a stack
(K, d_out, d_in): rank-1 subcomponents u_c v_cᵀ for SPD/VPD, each component's piece in that matrix for
APD. Extra alive components: alive components minus expected ones, counted in the method's own unit
(subcomponents summed over matrices for SPD/VPD: one per mechanism, plus d_mlp for a dense mlp_out;
whole components for APD: one per feature).

CI (SPD/VPD only), the SPD paper's judgement of compressed computation: each feature alone at 0.75
(the reference's one-hot input), and the subcomponents whose causal importance exceeds CI_ON in each
matrix. A (matrix, mechanism) pair is CI-recovered when exactly one subcomponent of that matrix is on
for the feature and that subcomponent is on for no other feature. A dense matrix (residual MLP mlp_out)
reports how many subcomponents are on for any feature, against the d_mlp the paper finds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from decompose.toy.models import Toy

MATCHED_COSINE = 0.9  # a mechanism counts as recovered when its best cosine reaches this
CI_ON = 0.1  # a subcomponent is on for an input when its CI exceeds this (the reference's tolerance)
ONE_HOT = 0.75  # the value of the single active feature in the CI test (the reference's input_magnitude)


@dataclass
class Recovery:
    mean_cosine: float  # mean over (matrix, mechanism) pairs of the best cosine
    min_cosine: float
    recovered: int  # pairs with best cosine ≥ MATCHED_COSINE
    pairs: int
    alive: int
    mechanisms: int  # alive components expected (see the module docstring)
    distinct: bool  # every mechanism of a matrix matched to a different component
    ci_recovered: int | None = None  # pairs with exactly one subcomponent on, on for that feature only
    dense_on: int | None = None  # dense matrices: subcomponents on for some feature (summed)
    dense_rank: int | None = None  # dense matrices: the rank expected (summed)

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


def ci_recovered(on: Tensor, features: list[int]) -> int:
    """`on`: (n_features, C) bool, subcomponent on for each one-hot feature. Features of `features` with
    exactly one subcomponent on, which is on for no other feature."""
    owners = on.sum(0)  # features each subcomponent is on for
    return sum(1 for f in features if int(on[f].sum()) == 1 and int(owners[on[f]].item()) == 1)


def recovery(
    toy: Toy,
    components: dict[str, Tensor],
    alive: dict[str, Tensor] | Tensor,
    mechanisms_unit: str = "matrix",
    one_hot_ci: dict[str, Tensor] | None = None,
) -> Recovery:
    """Score `components` (matrix → (K, d_out, d_in)) against the toy's mechanisms.

    `alive`: per matrix a (K,) bool (SPD/VPD), or one (K,) bool shared by every matrix (APD components).
    `mechanisms_unit`: "matrix" counts mechanisms per matrix (SPD/VPD); "component" counts features (APD).
    `one_hot_ci`: per matrix the (n_features, K) CIs with one feature at ONE_HOT (SPD/VPD), for the CI score.
    """
    mech = toy.mechanisms()
    bests, distinct = [], True
    n_ci = dense_on = dense_rank = 0
    for name, parts in mech.items():
        if one_hot_ci is not None:
            on = one_hot_ci[name] > CI_ON
            if toy.dense_rank(name):
                dense_on += int(on.any(0).sum())
                dense_rank += toy.dense_rank(name)
            n_ci += ci_recovered(on, sorted(parts))
        if not parts:
            continue
        keep = alive[name] if isinstance(alive, dict) else alive
        comps = components[name][keep]
        read = toy.feature_read(name)
        if read is not None:
            comps = comps @ read
        if comps.shape[0] == 0:
            bests.append(torch.zeros(len(parts)))
            distinct = False
            continue
        best, idx = best_cosines(comps, parts)
        bests.append(best)
        distinct = distinct and len(set(idx.tolist())) == len(parts)
    allb = torch.cat(bests)
    if isinstance(alive, dict):
        n_alive = int(sum(int(a.sum()) for a in alive.values()))
    else:
        n_alive = int(alive.sum())
    if mechanisms_unit == "matrix":
        n_mech = sum(len(p) for p in mech.values()) + sum(toy.dense_rank(n) for n in mech)
    else:
        n_mech = toy.n_mechanisms
    return Recovery(
        mean_cosine=float(allb.mean()),
        min_cosine=float(allb.min()),
        recovered=int((allb >= MATCHED_COSINE).sum()),
        pairs=int(allb.numel()),
        alive=n_alive,
        mechanisms=n_mech,
        distinct=distinct,
        ci_recovered=n_ci if one_hot_ci is not None else None,
        dense_on=dense_on if one_hot_ci is not None and dense_rank else None,
        dense_rank=dense_rank if one_hot_ci is not None and dense_rank else None,
    )
