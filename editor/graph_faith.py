"""Does a graph's kept nodes reproduce the prediction? The target with only those components, and under attack.

* full: the model itself (every mask 1 with Δ: the same logits);
* all CI: every component masked by its causal importance g, no Δ (the decomposition's own CI-masked model);
* graph: the graph's kept nodes masked by their g, every other component at 0, no Δ;
* graph + PGD: the kept nodes' masks free in [g, 1] and every other component's mask, and Δ's, free in
  [0, 1], chosen by a short projected sign-gradient descent to push the target's probability down (the
  adversarial ablation that makes VPD's graphs faithful): the graph holds only if the target survives it;
* all nodes + PGD: the same attack with every node above the threshold kept, the decomposition's own limit;
* a curve: the target with the k most influential nodes at their CI (the rest at 0), k = 8, 16, 32, ….
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from decompose.component_model import ModuleMask
from decompose.masks import adversarial_masks
from editor.graph import Node, RawGraph


@dataclass
class Outcome:
    prob: float  # of the target token at the last position
    logit: float
    rank: int  # 0 = the model's top prediction
    top: str  # the top prediction, decoded


@dataclass
class Faithfulness:
    full: Outcome
    all_ci: Outcome
    graph: Outcome
    pgd: Outcome
    pgd_all: Outcome
    pgd_steps: int
    curve: list[dict]  # {"nodes": k, "prob", "rank"} with the k most influential nodes kept
    reproduces: bool  # the target is still the top prediction with only the kept nodes (CI masks)
    survives_pgd: bool  # ... and under the attack

    def to_dict(self) -> dict:
        return asdict(self)

    def verdict(self) -> str:
        if self.reproduces and self.survives_pgd:
            return "the kept nodes reproduce the prediction, also under the adversarial attack"
        if self.reproduces and self.pgd_all.rank > 0:
            return "the kept nodes reproduce the prediction with CI masks; the attack breaks it, as it breaks every node together (the decomposition's limit)"
        if self.reproduces:
            return "the kept nodes reproduce the prediction with CI masks, but not under the adversarial attack"
        return "the kept nodes do NOT reproduce the prediction: the graph is incomplete"


def _outcome(logits: Tensor, target: int, tokenizer) -> Outcome:
    lp = torch.log_softmax(logits.float(), -1)
    return Outcome(float(lp[target].exp()), float(logits[target]), int((logits > logits[target]).sum()), tokenizer.decode([int(logits.argmax())]))


def kept_masks(g: dict[str, Tensor], kept: list[Node]) -> dict[str, Tensor]:
    """(T, C) per module: 1 where a kept node sits, 0 elsewhere."""
    on = {n: torch.zeros_like(v) for n, v in g.items()}
    for node in kept:
        if node.kind == "component":
            on[str(node.module)][node.position, node.index] = 1.0
    return on


def _attack(cm, ids: Tensor, floor: dict[str, Tensor], target: int, steps: int, step_size: float) -> Tensor:
    """The lowest-p(target) logits seen while sign-descending p(target) over masks in [floor, 1] and Δ in [0, 1]."""
    sources = {n: torch.zeros(1, ids.shape[1], v.shape[-1] + 1, requires_grad=True) for n, v in floor.items()}
    worst, worst_lp = None, float("inf")
    for step in range(steps + 1):
        specs = {}
        for n, s in sources.items():
            mask, delta = adversarial_masks(floor[n], s)
            specs[n] = ModuleMask(mask, delta)
        with torch.enable_grad():
            logits = cm.run(ids, specs)[0, -1]
            lp = torch.log_softmax(logits.float(), -1)[target]
        if float(lp.detach()) < worst_lp:
            worst, worst_lp = logits.detach(), float(lp.detach())
        if step == steps:
            break
        grads = torch.autograd.grad(lp, list(sources.values()))
        with torch.no_grad():
            for s, gr in zip(sources.values(), grads):
                s.sub_(step_size * gr.sign()).clamp_(0.0, 1.0)
    assert worst is not None
    return worst


def _floor(g: dict[str, Tensor], kept: list[Node]) -> dict[str, Tensor]:
    on = kept_masks(g, kept)
    return {n: (g[n] * on[n]).unsqueeze(0) for n in g}  # g at kept nodes, 0 elsewhere


def faithfulness(
    cm,
    ids: Tensor,
    raw: RawGraph,
    kept: list[Node],
    target: int,
    tokenizer,
    pgd_steps: int = 20,
    step_size: float = 0.1,
    ranked: list[Node] | None = None,
) -> Faithfulness:
    """The target at the last position of `ids` (1, T) under the conditions of the module docstring; `raw`: the
    graph of `ids`, whose CI and unmasked logits (its own forward) are reused; `ranked`: every node above the
    threshold, most influential first (for the curve and the all-nodes attack)."""
    ranked = ranked if ranked is not None else kept
    g, full = raw.ci, raw.logits
    with torch.no_grad():
        all_ci = cm.run(ids, {n: ModuleMask(v.unsqueeze(0)) for n, v in g.items()})[0, -1]
        graph = cm.run(ids, {n: ModuleMask(v) for n, v in _floor(g, kept).items()})[0, -1]
        curve = []
        k = 8
        while True:
            k = min(k, len(ranked))
            o = _outcome(cm.run(ids, {n: ModuleMask(v) for n, v in _floor(g, ranked[:k]).items()})[0, -1], target, tokenizer)
            curve.append({"nodes": k, "prob": o.prob, "rank": o.rank})
            if k == len(ranked):
                break
            k *= 2
    pgd = _attack(cm, ids, _floor(g, kept), target, pgd_steps, step_size)
    pgd_all = _attack(cm, ids, _floor(g, ranked), target, pgd_steps, step_size)
    out = {k: _outcome(v, target, tokenizer) for k, v in {"full": full, "all_ci": all_ci, "graph": graph, "pgd": pgd, "pgd_all": pgd_all}.items()}
    return Faithfulness(out["full"], out["all_ci"], out["graph"], out["pgd"], out["pgd_all"], pgd_steps, curve, out["graph"].rank == 0, out["pgd"].rank == 0)
