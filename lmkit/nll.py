"""Next-token negative log-likelihood: per position, per sequence, and the mean over whole documents.

`mean_nll` tokenizes each document with its BOS and cuts it into windows of at most `max_len` tokens
(the model's context) overlapping by one token, so every token after the BOS is predicted exactly
once (lm-eval's rolling scheme with a one-token context): long documents are scored whole and short
ones are not padded into others.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lmkit.tokens import context_length, length_sorted_batches, pad_id


def shifted_nll(logits: Tensor, ids: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(NLL of each next token (batch, seq−1), zero where not scored; the scored positions as 0/1 floats).

    A position counts when both it and the token it predicts are real (mask 1); `mask=None` counts all."""
    nll = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), ids[:, 1:], reduction="none")
    if mask is None:
        return nll, torch.ones_like(nll)
    keep = (mask[:, :-1] * mask[:, 1:]).to(nll.dtype)
    return nll * keep, keep


def next_token_nll(model, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """`shifted_nll` of the model's own logits on a padded batch."""
    return shifted_nll(model(input_ids=ids, attention_mask=mask).logits, ids, mask)


def sequence_nll(model, ids: Tensor, mask: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(summed NLL per sequence (batch,), predicted tokens per sequence (batch,)); padding ignored.

    `labels` is accepted for `pad_batch`'s triple and ignored: the mask says which tokens are real."""
    del labels
    device = next(model.parameters()).device
    nll, keep = next_token_nll(model, ids.to(device), mask.to(device))
    return nll.sum(1), keep.sum(1)


@dataclass(frozen=True)
class NLL:
    mean: float  # nats per predicted token
    tokens: int
    documents: int

    @property
    def perplexity(self) -> float:
        return math.exp(self.mean)


def windows(ids: list[int], max_len: int) -> list[list[int]]:
    """Windows of up to max_len tokens whose tokens after the first are targets, overlapping by one.

    A window never exceeds max_len: models with learned positions (GPT-2) cannot take max_len + 1.
    """
    if max_len < 2:
        raise ValueError(f"max_len must be at least 2, got {max_len}")
    return [ids[start : start + max_len] for start in range(0, len(ids) - 1, max_len - 1)]


@contextlib.contextmanager
def evaluating(model) -> Iterator[None]:
    """`model` in eval mode (no dropout) within the context, back in its own mode after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@torch.no_grad()
def mean_nll(model, tokenizer, texts: list[str], batch_size: int = 32, max_len: int | None = None) -> NLL:
    """Mean NLL per token of `texts` under `model` (evaluated in eval mode, no gradients)."""
    max_len = max_len or context_length(model)
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
    chunks = [w for doc in ids for w in windows(doc, max_len) if len(w) > 1]
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with evaluating(model):
        for _, inputs, mask in length_sorted_batches(chunks, pad_id(tokenizer), batch_size):
            nll, keep = next_token_nll(model, inputs.to(device), mask.to(device))
            total += nll.sum().item()
            count += int(keep.sum())
    return NLL(mean=total / max(count, 1), tokens=count, documents=len(texts))
