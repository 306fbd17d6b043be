"""Output-side ranking: order components by how much the forget set's specific next tokens rely on what they write.

A component's contribution to its matrix's output is (x·v_c)·u_c. Scaling it by (1 + t_c) and taking the
derivative of the token-weighted forget loss at t = 0 gives, for every component at once and from one
backward pass per batch, the first-order rise of that loss when the component is turned down:

    score_c = −∂L_forget/∂t_c = −Σ_positions (x·v_c) · (u_c · ∂L/∂y)

Large only for a component that is active on forget data *and* writes in a direction that raises the
forget-specific tokens (what it writes, seen through the rest of the network, the final norm and the
unembedding), unlike the input-side CI statistics, which say only where a component fires.
"""

from __future__ import annotations

import torch
from torch import Tensor

from decompose.targets import forward_hooks
from editor.search import weighted_forget_loss
from lmkit.tokens import Batches

Candidates = dict[str, Tensor]  # module → component indices (long)


def output_scores(cm, candidates: Candidates, batches: Batches, token_weights: Tensor) -> dict[str, Tensor]:
    """score_c per candidate (same order as `candidates[m]`), summed over `batches`; the model is unchanged."""
    t = {m: torch.zeros(len(i), requires_grad=True) for m, i in candidates.items()}

    def make(name: str):
        comp, idx = cm.comp(name), candidates[name]
        V, U = comp.V.detach()[:, idx], comp.U.detach()[idx]

        def hook(module, args, out):
            return out + ((args[0] @ V) * t[name]) @ U

        return hook

    frozen = [p for p in cm.model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        with forward_hooks((cm.targets[n].module, make(n)) for n in candidates):
            for ids, mask in batches:
                weighted_forget_loss(cm.model, ids, mask, token_weights).backward()
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return {m: -v.grad.detach() if v.grad is not None else torch.zeros_like(v) for m, v in t.items()}
