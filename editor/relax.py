"""Joint selection by a relaxed removal: optimise how much of each candidate component to remove.

Removing a set S of components is W ← W − Σ_{c∈S} u_c v_cᵀ. Relaxed, each candidate gets a removal
r_c = σ(θ_c) ∈ (0, 1) and the weights are W − Σ_c r_c u_c v_cᵀ, which is differentiable in θ. We
maximise the forget loss (cross-entropy on forget-specific next tokens) minus `retain_weight` × the
retain KL to the original model minus `sparsity` × Σ r_c. Trying candidates one at a time (a greedy
search) spends the whole retain budget on the first few components it meets; optimising all of them
together finds the components whose removal hurts the forget set most per unit of retain damage.
The result is a ranking (by r_c); the causal check of the actual removals is `editor.search`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import cast

import torch
from torch import Tensor

from decompose.targets import forward_hooks
from editor.search import Batches, RetainReference, weighted_forget_loss

Candidates = dict[str, Tensor]  # module → candidate component indices (long)


def token_counts(tokenizer, texts: list[str]) -> Tensor:
    """How often each vocabulary id occurs in `texts` (float64, no special tokens)."""
    counts = torch.zeros(len(tokenizer), dtype=torch.float64)
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        if ids:
            counts.index_add_(0, torch.tensor(ids, dtype=torch.long), torch.ones(len(ids), dtype=torch.float64))
    return counts


def forget_token_weights(tokenizer, forget: list[str], retain: list[str], margin: float = 1.0, smoothing: float = 1e-5) -> Tensor:
    """Per vocabulary id: max(0, log((f_F + s)/(f_R + s)) − margin), f = relative frequency in forget/retain.

    What makes a forget set different is mostly which tokens come next (a toxic tweet's slurs, not its
    'the'): the forget loss counts next tokens by how much more frequent they are in the forget set,
    and ignores tokens that are at most e^margin times more frequent there than in the retained data."""
    f, r = token_counts(tokenizer, forget), token_counts(tokenizer, retain)
    f, r = f / f.sum().clamp(min=1), r / r.sum().clamp(min=1)
    return (torch.log((f + smoothing) / (r + smoothing)) - margin).clamp(min=0).float()


def soft_removal(cm, candidates: Candidates, theta: dict[str, Tensor]) -> AbstractContextManager[None]:
    """Run the plain model with σ(θ_c)·u_c v_cᵀ subtracted from each candidate's matrix (forward hooks)."""

    def make(name: str):
        comp, idx = cm.comp(name), candidates[name]
        V, U = comp.V.detach()[:, idx], comp.U.detach()[idx]  # (d_in, k), (k, d_out)

        def hook(module, args, out):
            return out - ((args[0] @ V) * torch.sigmoid(theta[name])) @ U

        return hook

    return forward_hooks((cm.targets[n].module, make(n)) for n in candidates)


def optimize_removal(
    cm,
    candidates: Candidates,
    forget: Batches,
    retain: Batches,
    token_weights: Tensor,
    *,
    steps: int,
    lr: float,
    retain_weight: float,
    sparsity: float,
    init: float = -3.0,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Tensor]:
    """σ(θ) per candidate after `steps` Adam steps on (−forget loss + retain_weight·KL + sparsity·Σr);
    the settings' defaults live in editor.methods.vpd.VpdSettings.

    Batches are cycled; the model's own parameters are not touched (only θ gets gradients). Works
    with the model's Conv1D modules too: hooks see (…, d_in) inputs and (…, d_out) outputs."""
    if not candidates or steps == 0:
        return {n: torch.sigmoid(torch.full((len(i),), init)) for n, i in candidates.items()}
    reference = RetainReference(cm.model, retain)
    theta = {n: torch.full((len(i),), init, requires_grad=True) for n, i in candidates.items()}
    opt = torch.optim.Adam(theta.values(), lr=lr)
    frozen = [p for p in cm.model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        with soft_removal(cm, candidates, theta):
            for step in range(steps):
                ids, mask = forget[step % len(forget)]
                forget_loss = weighted_forget_loss(cm.model, ids, mask, token_weights)
                kl = reference.kl(cm.model, step % len(retain))
                removed = cast(Tensor, sum(torch.sigmoid(t).sum() for t in theta.values()))
                loss = -forget_loss + retain_weight * kl + sparsity * removed
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if on_step is not None:
                    on_step(step, {"forget": forget_loss.item(), "retain_kl": kl.item(), "removed": removed.item()})
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return {n: torch.sigmoid(t.detach()) for n, t in theta.items()}


def prefix_sizes(n: int, points: int) -> list[int]:
    """About `points` prefix lengths from 1 to n, denser at the start (where single removals matter most)."""
    if n <= 0:
        return []
    if points == 1:
        return [n]
    sizes = {max(1, round(math.exp(math.log(n) * k / (points - 1)))) for k in range(points)}
    return sorted(sizes | {n})
