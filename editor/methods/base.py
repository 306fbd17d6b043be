"""What every method shares: its registry entry, its inputs, progress reporting, and the matrices it may change.

A method never edits the model it is given: `run` returns one `editor.edit.Edit` per requested strength
(the weight change as LoRA factors, ΔW = B·A, and its record). `editor.apply` makes a change (the one
place that edits weights, with an exact revert) and `editor.export` writes the same factors as the PEFT
adapter, so the exported checkpoint and the merged adapter agree for every method.

Gradient baselines update the same matrices VPD decomposes (attention and MLP, `decompose.targets`
architecture defaults); embeddings, the tied unembedding and norms stay frozen. That keeps the
comparison like for like and makes the adapter an exact copy of the edit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from decompose.config_base import BaseConfig
from decompose.io import Decomposition
from decompose.targets import TargetMatrix, default_patterns, resolve_targets
from editor.apply import Factors
from editor.edit import Edit, rank_summary

Status = Callable[[str], None]
Step = Callable[[int, int, float], None]  # (step, total steps, loss)


class StepReport(Protocol):
    def __call__(self, done: int, total: int, note: str = "") -> None: ...


def _quiet_status(message: str) -> None:
    return None


def _quiet_step(done: int, total: int, note: str = "") -> None:
    return None


@dataclass(frozen=True)
class Progress:
    """Where a method reports: a free-text status, and steps done out of a total (with a short note)."""

    status: Callable[[str], None] = _quiet_status
    step: StepReport = _quiet_step


@dataclass(frozen=True)
class ForgetInputs:
    """What every method gets: the model (never edited), its tokenizer, the texts, and a decomposition if it uses one."""

    model: nn.Module
    tokenizer: object
    forget: list[str]
    retain: list[str]
    decomposition: Decomposition | None = None


@dataclass(frozen=True)
class Method:
    """One registered unlearning method; `editor forget --method NAME` and `editor compare` run it the same way."""

    name: str
    summary: str
    settings: type[BaseConfig]
    strength: str  # the settings field `--strength` sets and `editor compare` sweeps
    sweep: tuple[float, ...]  # `editor compare` default sweep of that field on the shipped default
    run: Callable[[ForgetInputs, Any, list, Progress], dict[Any, Edit]]  # (inputs, settings, strengths, progress)
    how: str  # one paragraph for the model card: how this method chose its change
    uses_retain: bool = True
    needs_decomposition: bool = False


@dataclass(frozen=True)
class BaselineRun:
    """The weight changes a trained baseline made, one per requested strength, and how it got there."""

    edits: dict[float, Factors]
    seconds: dict[float, float]  # wall time from the start of the method to each edit being ready
    log: list[dict]  # per-step training log (step, loss, ...), thinned


def training_edits(name: str, settings: BaseConfig, strength: str, run: BaselineRun) -> dict[float, Edit]:
    """A trained baseline's changes as Edits: full updates described by their rank, with the training log."""
    return {
        value: Edit(
            method=name,
            summary=rank_summary(factors),
            settings=settings.model_dump(mode="json"),
            strength={"field": strength, "value": value},
            factors=factors,
            log={"training": run.log},
            seconds=run.seconds[value],
        )
        for value, factors in run.edits.items()
    }


def target_matrices(model: nn.Module) -> dict[str, TargetMatrix]:
    """The attention and MLP matrices of `model` (the architecture's default patterns), by module name."""
    return {t.name: t for t, _ in resolve_targets(model, dict.fromkeys(default_patterns(model), 1))}


def snapshot(targets: dict[str, TargetMatrix]) -> dict[str, Tensor]:
    """float32 (d_out, d_in) copies of every target weight."""
    return {n: t.weight().detach().float().clone() for n, t in targets.items()}


@torch.no_grad()
def exact_factors(delta: dict[str, Tensor]) -> Factors:
    """LoRA factors with B·A = ΔW to float32 precision, per module whose ΔW is not zero.

    SVD in float64; the rank kept is the numerical rank at the precision of the given ΔW (singular values
    above σ_max·max(d_out, d_in)·eps(dtype), numpy's matrix_rank rule). Pass ΔW in float64 when it is the
    exact difference of two float32 weights: a full-rank gradient update then keeps r = min(d_in, d_out)
    and nothing is truncated. A = Vᵀ, B = U·S.
    """
    out: Factors = {}
    for name, d in delta.items():
        d64 = d.detach().double().cpu()
        if not torch.any(d64 != 0):
            continue
        u, s, vh = torch.linalg.svd(d64, full_matrices=False)
        tol = s[0] * max(d64.shape) * torch.finfo(d.dtype).eps
        r = max(1, int((s > tol).sum()))
        out[name] = (vh[:r].float().contiguous(), (u[:, :r] * s[:r]).float().contiguous())
    return out


def thin(log: list[dict], keep: int = 50) -> list[dict]:
    """At most about `keep` rows of a training log, always ending on the last."""
    if len(log) <= keep:
        return log
    every = -(-len(log) // keep)
    rows = log[::every]
    return rows if rows[-1] is log[-1] else [*rows, log[-1]]
