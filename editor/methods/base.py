"""What every baseline shares: its registry entry, the matrices it may change, exact LoRA factors of a
weight change, and the training data stream.

A baseline never edits the model it is given. It trains a copy (or an adapter on a copy) and returns
the weight change as LoRA factors per matrix, (A: r×d_in, B: d_out×r) with ΔW = B·A, one set per
requested strength. `editor.apply.apply_delta` then makes the change (the one function that edits
weights, with an exact revert) and `editor.export` writes the same factors as the PEFT adapter, so the
exported checkpoint and the merged adapter agree as they do for VPD.

Baselines update the same matrices VPD decomposes (attention and MLP, `decompose.targets`
architecture defaults); embeddings, the tied unembedding and norms stay frozen. That keeps the
comparison to VPD like for like and makes the adapter an exact copy of the edit.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from decompose.config_base import BaseConfig
from decompose.targets import TargetMatrix, default_patterns, resolve_targets
from evals.nll import pad_batch

Factors = dict[str, tuple[Tensor, Tensor]]  # module name → (A: r×d_in, B: d_out×r), float32, ΔW = B·A
Status = Callable[[str], None]
Step = Callable[[int, int, float], None]  # (step, total steps, loss)


@dataclass(frozen=True)
class BaselineRun:
    """The edits a baseline made, one per requested strength, and how it got there."""

    edits: dict[float, Factors]
    seconds: dict[float, float]  # wall time from the start of the method to each edit being ready
    log: list[dict]  # per-step training log (step, loss, ...), thinned


@dataclass(frozen=True)
class Baseline:
    """One registered unlearning baseline."""

    name: str
    summary: str
    settings: type[BaseConfig]
    strength: str  # the settings field `--strength` sets and `editor compare` sweeps
    sweep: tuple[float, ...]  # `editor compare` default sweep of that field on the shipped default
    run: Callable[..., BaselineRun]  # (model, tokenizer, forget, retain, settings, strengths, status, on_step)


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


def factor_delta(factors: Factors) -> dict[str, Tensor]:
    """ΔW = B·A per module, float32."""
    return {n: b @ a for n, (a, b) in factors.items()}


def ranks(factors: Factors) -> dict[str, int]:
    return {n: int(a.shape[0]) for n, (a, _) in sorted(factors.items())}


class TokenBatches:
    """Random batches of whole documents (BOS first, cut to the context), padded, with -100 labels on padding.

    Draws without replacement and reshuffles after each pass, from its own seeded generator.
    """

    def __init__(self, tokenizer, texts: list[str], max_len: int, batch_size: int, seed: int):
        ids = [doc[:max_len] for doc in tokenizer(texts, add_special_tokens=True)["input_ids"]]
        self.docs = [d for d in ids if len(d) > 1]
        if not self.docs:
            raise ValueError("no document has two or more tokens")
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.batch_size = batch_size
        self.rng = random.Random(seed)
        self.order: list[int] = []

    def next(self) -> tuple[Tensor, Tensor, Tensor]:
        chunk = []
        while len(chunk) < min(self.batch_size, len(self.docs)):
            if not self.order:
                self.order = list(range(len(self.docs)))
                self.rng.shuffle(self.order)
            chunk.append(self.docs[self.order.pop()])
        return pad_batch(chunk, self.pad)


def sequence_nll(model: nn.Module, inputs: Tensor, mask: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """(summed NLL per sequence (batch,), predicted tokens per sequence (batch,)) — next-token, padding ignored."""
    device = next(model.parameters()).device
    logits = model(input_ids=inputs.to(device), attention_mask=mask.to(device)).logits.float()
    targets = labels[:, 1:].to(device)
    nll = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="none"
    ).view(targets.shape)
    return nll.sum(dim=1), (targets != -100).sum(dim=1)


def thin(log: list[dict], keep: int = 50) -> list[dict]:
    """At most about `keep` rows of a training log, always ending on the last."""
    if len(log) <= keep:
        return log
    every = -(-len(log) // keep)
    rows = log[::every]
    return rows if rows[-1] is log[-1] else [*rows, log[-1]]
