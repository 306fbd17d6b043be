"""Pruning an attribution graph to what carries most of the attribution to the target.

Each node's incoming |attr| is normalised to sum to 1 (Â[t, s] = |attr(s → t)| / Σ_s' |attr(s' → t)|), so a
node passes on the share of its own influence that each source gave it. A node's influence on the target
is the sum over all paths, e_targetᵀ(Â + Â² + …), finite because the graph is acyclic. Nodes are kept in
order of influence until they hold `node_fraction` of the total; then edges between kept nodes, scored by
Â[t, s] × influence(t), until they hold `edge_fraction`; finally every node left without a kept path to
the target is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Pruned:
    nodes: list[int]  # kept node indices into the raw graph, in raw order (the target last)
    edges: list[tuple[int, int, float]]  # (source, target, attr) in raw indices
    influence: Tensor  # (N,) every raw node's influence on the target (1 for the target itself)
    node_fraction: float
    edge_fraction: float


def normalised(attr: Tensor) -> Tensor:
    a = attr.abs()
    return a / a.sum(1, keepdim=True).clamp_min(1e-30)


def influence(attr: Tensor, target: int) -> Tensor:
    """e_targetᵀ Σ_{k≥1} Âᵏ, plus 1 at the target: every node's share of the attribution reaching the target."""
    A = normalised(attr).double()
    x = torch.zeros(attr.shape[0], dtype=torch.float64)
    x[target] = 1.0
    total = x.clone()
    for _ in range(attr.shape[0]):  # at most the longest path; stops long before on a real graph
        x = x @ A
        if float(x.abs().sum()) < 1e-12:
            break
        total += x
    return total.float()


def _prefix(scores: Tensor, fraction: float) -> Tensor:
    """Indices of the largest scores whose sum first reaches `fraction` of the total (at least one)."""
    order = scores.argsort(descending=True)
    cum = scores[order].cumsum(0)
    total = float(cum[-1]) if len(cum) else 0.0
    if total <= 0:
        return order[:0]
    n = int((cum < fraction * total).sum()) + 1
    return order[: min(n, len(order))]


def prune(
    attr: Tensor, target: int, node_fraction: float = 0.8, edge_fraction: float = 0.95, max_nodes: int | None = None, keep: set[int] | None = None
) -> Pruned:
    """The kept nodes and edges of the graph attr[t, s]; `keep` are nodes kept whatever their influence (edited ones)."""
    N = attr.shape[0]
    inf = influence(attr, target)
    others = inf.clone()
    others[target] = 0
    chosen = _prefix(others, node_fraction)
    if max_nodes is not None:
        chosen = chosen[:max_nodes]
    kept = torch.zeros(N, dtype=torch.bool)
    kept[chosen] = True
    kept[target] = True
    forced = torch.zeros(N, dtype=torch.bool)
    for k in keep or ():
        forced[k] = True
    kept |= forced
    A = normalised(attr) * inf.unsqueeze(1)  # Â[t, s] × influence(t)
    A = A * kept.unsqueeze(1) * kept.unsqueeze(0)
    flat = _prefix(A.flatten(), edge_fraction)
    E = torch.zeros(N * N, dtype=torch.bool)
    E[flat] = True
    E = E.view(N, N) & (attr != 0)
    # Drop what no longer reaches the target: walk back from it along kept edges.
    reach = torch.zeros(N, dtype=torch.bool)
    reach[target] = True
    for _ in range(N):
        more = reach | (E & reach.unsqueeze(1)).any(0)
        if bool((more == reach).all()):
            break
        reach = more
    nodes = [i for i in range(N) if (reach[i] and kept[i]) or forced[i]]
    alive = torch.zeros(N, dtype=torch.bool)
    alive[nodes] = True
    E &= alive.unsqueeze(1) & alive.unsqueeze(0)
    edges = [(int(s), int(t), float(attr[t, s])) for t, s in E.nonzero().tolist()]
    return Pruned(nodes, edges, inf, node_fraction, edge_fraction)
