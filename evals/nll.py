"""Mean negative log-likelihood per token of documents, the project's native forget/retain measure.

Each document is tokenized with its BOS and cut into windows of at most `max_len` tokens (the model's
context) overlapping by one token, so each window predicts up to `max_len - 1` new tokens; every token
after the BOS is predicted exactly once (lm-eval's rolling scheme with a one-token context), so long
documents are scored whole and short ones are not padded into others.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class NLL:
    mean: float  # nats per predicted token
    tokens: int
    documents: int

    @property
    def perplexity(self) -> float:
        return float(torch.tensor(self.mean).exp())


def _windows(ids: list[int], max_len: int) -> list[list[int]]:
    """Windows of up to max_len tokens whose tokens after the first are targets, overlapping by one.

    A window never exceeds max_len: models with learned positions (GPT-2) cannot take max_len + 1.
    """
    if max_len < 2:
        raise ValueError(f"max_len must be at least 2, got {max_len}")
    return [ids[start : start + max_len] for start in range(0, len(ids) - 1, max_len - 1)]


def context_length(model) -> int:
    return int(getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", 1024))


def pad_batch(chunk: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded (input_ids, attention_mask, labels) for token-id lists; labels are −100 on padding."""
    width = max(len(c) for c in chunk)
    inputs = torch.full((len(chunk), width), pad, dtype=torch.long)
    labels = torch.full((len(chunk), width), -100, dtype=torch.long)
    mask = torch.zeros((len(chunk), width), dtype=torch.long)
    for row, c in enumerate(chunk):
        inputs[row, : len(c)] = torch.tensor(c)
        labels[row, : len(c)] = torch.tensor(c)
        mask[row, : len(c)] = 1
    return inputs, mask, labels


@torch.no_grad()
def mean_nll(model, tokenizer, texts: list[str], batch_size: int = 32, max_len: int | None = None) -> NLL:
    """Mean NLL per token of `texts` under `model` (eval mode, no gradients)."""
    max_len = max_len or context_length(model)
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
    windows = [w for doc in ids for w in _windows(doc, max_len) if len(w) > 1]
    windows.sort(key=len)  # similar lengths per batch: less padding
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    for i in range(0, len(windows), batch_size):
        inputs, mask, labels = pad_batch(windows[i : i + batch_size], pad)
        logits = model(input_ids=inputs.to(device), attention_mask=mask.to(device)).logits.float()
        targets = labels[:, 1:].to(device)
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="sum"
        )
        total += nll.item()
        count += int((targets != -100).sum())
    model.train(was_training)
    return NLL(mean=total / max(count, 1), tokens=count, documents=len(texts))
