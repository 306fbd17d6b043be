"""Projected gradient-ascent optimisers for adversarial mask sources (sign steps and bias-corrected Adam)."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor


def _check_keys(sources: dict[str, Tensor], grads: dict[str, Tensor]) -> None:
    if sources.keys() != grads.keys():
        raise KeyError(f"sources and grads name different modules: {sorted(sources)} vs {sorted(grads)}")


class SignAscent:
    """s ← clamp(s + step_size·sign(∂L/∂s), 0, 1): the fresh-PGD step."""

    def __init__(self, step_size: float):
        self.step_size = step_size
        self.n_steps = 0

    def step(self, sources: dict[str, Tensor], grads: dict[str, Tensor], lr: float | None = None) -> None:
        """One ascent step in place; lr, when given, replaces step_size for this step."""
        _check_keys(sources, grads)
        size = self.step_size if lr is None else lr
        with torch.no_grad():
            for name, s in sources.items():
                s.add_(size * grads[name].sign().to(s.dtype)).clamp_(0.0, 1.0)
        self.n_steps += 1

    def state_dict(self) -> dict[str, Any]:
        return {"n_steps": self.n_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.n_steps = int(state["n_steps"])


class AdamAscent:
    """Bias-corrected Adam that maximises: s ← clamp(s + lr·m̂/(√v̂ + eps), 0, 1). The persistent-PGD step."""

    def __init__(self, lr: float, beta1: float = 0.5, beta2: float = 0.99, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.n_steps = 0
        self.exp_avg: dict[str, Tensor] = {}
        self.exp_avg_sq: dict[str, Tensor] = {}

    def step(self, sources: dict[str, Tensor], grads: dict[str, Tensor], lr: float | None = None) -> None:
        """One ascent step in place; lr, when given, overrides the constructor's (for an lr schedule)."""
        _check_keys(sources, grads)
        lr = self.lr if lr is None else lr
        self.n_steps += 1
        t = self.n_steps
        bias1, bias2 = 1 - self.beta1**t, 1 - self.beta2**t
        with torch.no_grad():
            for name, s in sources.items():
                g = grads[name].to(s.dtype)
                if name not in self.exp_avg:
                    self.exp_avg[name] = torch.zeros_like(s)
                    self.exp_avg_sq[name] = torch.zeros_like(s)
                m, v = self.exp_avg[name], self.exp_avg_sq[name]
                m.mul_(self.beta1).add_(g, alpha=1 - self.beta1)
                v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
                s.add_(lr * (m / bias1) / ((v / bias2).sqrt() + self.eps)).clamp_(0.0, 1.0)

    def state_dict(self) -> dict[str, Any]:
        """Step counter and moments (copies); the sources themselves are saved by the caller."""
        return {
            "n_steps": self.n_steps,
            "exp_avg": {k: v.clone() for k, v in self.exp_avg.items()},
            "exp_avg_sq": {k: v.clone() for k, v in self.exp_avg_sq.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.n_steps = int(state["n_steps"])
        self.exp_avg = {k: v.clone() for k, v in state["exp_avg"].items()}
        self.exp_avg_sq = {k: v.clone() for k, v in state["exp_avg_sq"].items()}


def init_sources(
    shapes: dict[str, tuple[int, ...]],
    init: Literal["random", "ones", "zeros"],
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> dict[str, Tensor]:
    """One float32 source per module, U(0,1), all-ones or all-zeros; requires_grad is left to the caller."""
    out: dict[str, Tensor] = {}
    for name, shape in shapes.items():
        if init == "random":
            out[name] = torch.rand(shape, generator=generator, device=device)
        elif init == "ones":
            out[name] = torch.ones(shape, device=device)
        elif init == "zeros":
            out[name] = torch.zeros(shape, device=device)
        else:
            raise ValueError(f"unknown source init {init!r}")
    return out
