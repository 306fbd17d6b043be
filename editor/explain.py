"""What a component does, in tokens: where it fires (input side) and what it promotes (output side)."""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import Tensor

from decompose.sigmoids import lower_leaky_hard_sigmoid
from decompose.stats import ci_batches
from editor.apply import ComponentRef, apply_delta, removal_delta
from lmkit.tokens import Batches


@torch.no_grad()
def firing_tokens(cm, ci_fn, batches: Batches, comps: list[ComponentRef], tokenizer, k: int = 8) -> dict[ComponentRef, list[str]]:
    """The tokens with the highest total CI for each component (the token at the position it fires on)."""
    by_module: dict[str, list[ComponentRef]] = defaultdict(list)
    for c in comps:
        by_module[c.module].append(c)
    vocab = len(tokenizer)
    totals = {m: torch.zeros(vocab, len(cs), dtype=torch.float64) for m, cs in by_module.items()}
    for ids, _, keep, z in ci_batches(cm, ci_fn, batches):
        tokens = ids[keep].cpu()
        for module, cs in by_module.items():
            g = lower_leaky_hard_sigmoid(z[module][keep][:, [c.index for c in cs]])  # (tokens, len(cs))
            totals[module].index_add_(0, tokens, g.double().cpu())
    out = {}
    for module, cs in by_module.items():
        top = totals[module].topk(min(k, vocab), dim=0)
        for j, c in enumerate(cs):
            out[c] = [tokenizer.decode([int(t)]) for t, v in zip(top.indices[:, j], top.values[:, j]) if v > 0]
    return out


@torch.no_grad()
def mean_logprobs(model, batches: Batches) -> Tensor:
    """The model's next-token log-probabilities averaged over every real position of `batches` (vocab,)."""
    sums, n = [], 0
    for ids, mask in batches:
        lp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)[mask.bool()]
        sums.append(lp.sum(0))
        n += lp.shape[0]
    return torch.stack(sums).sum(0) / max(n, 1)


@torch.no_grad()
def lowered_tokens(cm, batches: Batches, delta: dict[str, Tensor], tokenizer, k: int = 8, base: Tensor | None = None) -> list[str]:
    """The tokens whose mean log-probability over the batches drops most when ΔW is applied."""
    base = mean_logprobs(cm.model, batches) if base is None else base
    step = apply_delta(cm.targets, delta)
    try:
        drop = base - mean_logprobs(cm.model, batches)
    finally:
        step.revert()
    return [tokenizer.decode([int(t)]) for t in drop.topk(k).indices]


@torch.no_grad()
def promoted_tokens(cm, batches: Batches, comps: list[ComponentRef], tokenizer, k: int = 8) -> dict[ComponentRef, list[str]]:
    """The tokens whose log-probability drops most, on average over the batches' tokens, when the
    component alone is removed: what it promotes, for any matrix type (not just residual writers)."""
    base = mean_logprobs(cm.model, batches)
    return {c: lowered_tokens(cm, batches, removal_delta(cm, [c]), tokenizer, k, base) for c in comps}


def profile_batches(cm, tokenizer, texts: list[str], docs: int, batch_size: int = 64) -> tuple[Batches, int]:
    """(batches, documents truncated): the seeded sample of `docs` of `texts` that `top_components` profiles
    (and the component pages take their contexts from), at the model's context length."""
    from lmkit.texts import sample_texts
    from lmkit.tokens import context_length, document_batches

    return document_batches(tokenizer, sample_texts(texts, docs, 0), context_length(cm.model), batch_size)


def top_components(
    dec, tokenizer, texts: list[str], top: int, docs: int, batch_size: int = 64, explain_docs: int = 256, against: list[str] | None = None
) -> tuple[list[dict], int, int]:
    """The `top` components with the highest mean CI on (a seeded sample of `docs` of) `texts`, each with its
    firing density and the tokens it fires on and promotes. With `against` (other text), the components most
    specific to `texts` instead: used more there than on `against`, ranked as `editor forget` ranks its
    candidates (editor.select.specificity). Returns (rows, tokens seen, documents truncated)."""
    from decompose.stats import component_stats
    from editor.select import rank_candidates

    batches, truncated = profile_batches(dec.cm, tokenizer, texts, docs, batch_size)
    stats = component_stats(dec.cm, dec.ci_fn, batches)
    extra: list[dict]
    if against is None:
        ranked = sorted(((float(v[c]), n, c) for n, v in stats.mean_ci.items() for c in range(v.numel())), reverse=True)[:top]
        extra = [{} for _ in ranked]
    else:
        other, _ = profile_batches(dec.cm, tokenizer, against, docs, batch_size)
        cands = rank_candidates(stats, component_stats(dec.cm, dec.ci_fn, other))[:top]
        ranked = [(c.forget_mean_ci, c.module, c.index) for c in cands]
        extra = [{"against_mean_ci": c.retain_mean_ci, "specificity": c.score} for c in cands]
    comps = [ComponentRef(n, c) for _, n, c in ranked]
    explain_batches = batches[: max(1, explain_docs // batch_size)]
    fires = firing_tokens(dec.cm, dec.ci_fn, explain_batches, comps, tokenizer)
    promotes = promoted_tokens(dec.cm, explain_batches, comps, tokenizer)
    rows = [
        {
            "module": c.module,
            "index": c.index,
            "mean_ci": mu,
            "density": float(stats.density[c.module][c.index]),
            **more,
            "fires_on": fires[c],
            "promotes": promotes[c],
        }
        for (mu, _, _), c, more in zip(ranked, comps, extra)
    ]
    return rows, stats.tokens, truncated
