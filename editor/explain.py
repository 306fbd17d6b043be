"""What a component does, in tokens: where it fires (input side) and what it promotes (output side)."""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import Tensor

from decompose.sigmoids import lower_leaky_hard_sigmoid
from editor.apply import RemovedComponent, apply_delta, component_delta

Batches = list[tuple[Tensor, Tensor]]


@torch.no_grad()
def firing_tokens(cm, ci_fn, batches: Batches, comps: list[RemovedComponent], tokenizer, k: int = 8) -> dict[RemovedComponent, list[str]]:
    """The tokens with the highest total CI for each component (the token at the position it fires on)."""
    by_module: dict[str, list[RemovedComponent]] = defaultdict(list)
    for c in comps:
        by_module[c.module].append(c)
    vocab = len(tokenizer)
    totals = {m: torch.zeros(vocab, len(cs), dtype=torch.float64) for m, cs in by_module.items()}
    for ids, mask in batches:
        with cm.caching_inputs() as inputs:
            cm.model(input_ids=ids, attention_mask=mask)
        keep = mask.bool().clone()
        keep[:, 0] = False
        tokens = ids[keep]
        z = ci_fn({n: inputs[n] for n in cm.names})
        for module, cs in by_module.items():
            g = lower_leaky_hard_sigmoid(z[module][keep][:, [c.index for c in cs]])  # (tokens, len(cs))
            totals[module].index_add_(0, tokens, g.double())
    out = {}
    for module, cs in by_module.items():
        top = totals[module].topk(min(k, vocab), dim=0)
        for j, c in enumerate(cs):
            out[c] = [tokenizer.decode([int(t)]) for t, v in zip(top.indices[:, j], top.values[:, j]) if v > 0]
    return out


@torch.no_grad()
def promoted_tokens(cm, batches: Batches, comps: list[RemovedComponent], tokenizer, k: int = 8) -> dict[RemovedComponent, list[str]]:
    """The tokens whose log-probability drops most, on average over the batches' tokens, when the
    component alone is removed: what it promotes, for any matrix type (not just residual writers)."""
    model = cm.model

    def mean_logprobs() -> Tensor:
        acc, n = None, 0
        for ids, mask in batches:
            lp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)[mask.bool()]
            acc = lp.sum(0) if acc is None else acc + lp.sum(0)
            n += lp.shape[0]
        return acc / max(n, 1)

    base = mean_logprobs()
    out = {}
    for c in comps:
        step = apply_delta(cm.targets, component_delta(cm, [c]))
        try:
            drop = base - mean_logprobs()
        finally:
            step.revert()
        out[c] = [tokenizer.decode([int(t)]) for t in drop.topk(k).indices]
    return out
