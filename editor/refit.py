"""Learned edits of selected components: change what they write (or how strongly), never when they fire.

For a set S of components of one matrix with read vectors v_c and write vectors u_c, the edit is

    write:  ΔW = Σ_{c∈S} δ_c v_cᵀ          (δ_c ∈ R^{d_out} learned: a new write vector u_c + δ_c)
    scale:  ΔW = Σ_{c∈S} t_c u_c v_cᵀ      (t_c ∈ R learned: the component's prefactor becomes 1 + t_c, any sign)

so its rank is at most |S| per matrix and it is exact as LoRA factors (A = V_Sᵀ, B = [δ_c] or [t_c u_c]).
The read vectors stay as the decomposition learned them: the edit acts where the components act.

Training maximises a capped, token-weighted forget loss (each forget-specific next token's NLL counts up
to `cap` nats, so a token already suppressed stops pulling and the optimiser turns to the retain term)
minus `retain_weight` × the retain KL to the original model (per document), with an L2 penalty on the
change. Snapshots are taken along the way; `editor.search.measure_deltas` checks them on separate data.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Literal

import torch
from torch import Tensor

from decompose.targets import forward_hooks
from editor.apply import Factors
from editor.search import RetainReference, target_weights
from lmkit.nll import next_token_nll
from lmkit.tokens import Batches

Kind = Literal["write", "scale"]
Selected = dict[str, Tensor]  # module → selected component indices (long)


def capped_forget_loss(model, ids: Tensor, mask: Tensor, token_weights: Tensor, cap: float) -> Tensor:
    """Token-weighted mean next-token NLL with each NLL clipped at `cap` (differentiable below it)."""
    nll, keep = next_token_nll(model, ids, mask)
    w = target_weights(token_weights, ids, keep)
    return (nll.clamp(max=cap) * w).sum() / w.sum().clamp(min=1e-8)


class Refit:
    """The learnable change of the selected components of a decomposition (`kind` "write" or "scale")."""

    def __init__(self, cm, selected: Selected, kind: Kind):
        self.cm, self.selected, self.kind = cm, selected, kind
        self.V = {m: cm.comp(m).V.detach()[:, i].float() for m, i in selected.items()}  # (d_in, k)
        self.U = {m: cm.comp(m).U.detach()[i].float() for m, i in selected.items()}  # (k, d_out)
        shape = (lambda m: (len(selected[m]),)) if kind == "scale" else (lambda m: tuple(self.U[m].shape))
        self.params = {m: torch.zeros(shape(m), requires_grad=True) for m in selected}

    def write_change(self, m: str) -> Tensor:
        """(k, d_out): the change of each selected component's write vector."""
        p = self.params[m]
        return p[:, None] * self.U[m] if self.kind == "scale" else p

    def hooked(self) -> AbstractContextManager[None]:
        """Run the plain model with the current (differentiable) change added to each matrix's output."""

        def make(m: str):
            def hook(module, args, out):
                return out + (args[0] @ self.V[m]) @ self.write_change(m)

            return hook

        return forward_hooks((self.cm.targets[m].module, make(m)) for m in self.selected)

    @torch.no_grad()
    def factors(self) -> Factors:
        """The current change as LoRA factors per module: A = V_Sᵀ (k × d_in), B = change (d_out × k)."""
        return {m: (self.V[m].T.contiguous().clone(), self.write_change(m).T.contiguous().clone()) for m in self.selected}

    def penalty(self) -> Tensor:
        return sum((p**2).sum() for p in self.params.values())  # type: ignore[return-value]


def train_refit(
    refit: Refit,
    forget: Batches,
    retain: Batches,
    token_weights: Tensor,
    *,
    steps: int,
    lr: float,
    retain_weight: float,
    cap: float,
    l2: float,
    snapshot_every: int,
    retain_weight_final: float | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> list[tuple[int, Factors]]:
    """Adam on (−capped forget loss + w·KL + l2·‖change‖²); returns (step, factors) every `snapshot_every`
    steps and at the end. The model's own parameters are not touched.

    w goes geometrically from `retain_weight` to `retain_weight_final` (default: constant): starting gentle
    and letting the forget loss win more and more, so the snapshots of one run trace the trade-off from
    small edits to large ones, each close to what a run at its weight would settle on."""
    final = retain_weight if retain_weight_final is None else retain_weight_final
    model = refit.cm.model
    reference = RetainReference(model, retain)
    opt = torch.optim.Adam(refit.params.values(), lr=lr)
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    snapshots: list[tuple[int, Factors]] = []
    try:
        with refit.hooked():
            for step in range(1, steps + 1):
                ids, mask = forget[(step - 1) % len(forget)]
                forget_loss = capped_forget_loss(model, ids, mask, token_weights, cap)
                kl = reference.kl(model, (step - 1) % len(retain))
                weight = retain_weight * (final / retain_weight) ** ((step - 1) / max(steps - 1, 1)) if retain_weight > 0 else final
                loss = -forget_loss + weight * kl + l2 * refit.penalty()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if on_step is not None:
                    on_step(step, {"forget": forget_loss.item(), "retain_kl": kl.item()})
                if step % snapshot_every == 0 or step == steps:
                    snapshots.append((step, refit.factors()))
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return snapshots
