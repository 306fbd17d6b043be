"""Documents → token batches: padding, whole-document batches, a seeded random stream, the context length."""

from __future__ import annotations

import random
from collections.abc import Iterator

import torch
from torch import Tensor

Batches = list[tuple[Tensor, Tensor]]  # (input_ids, attention_mask) pairs


def context_length(model) -> int:
    return int(getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None) or 1024)


def pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def pad_batch(chunk: list[list[int]], pad: int) -> tuple[Tensor, Tensor, Tensor]:
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


def length_sorted_batches(seqs: list[list[int]], pad: int, batch_size: int) -> Iterator[tuple[list[int], Tensor, Tensor]]:
    """`seqs` shortest first (similar lengths per batch: less padding), `batch_size` at a time, right-padded:
    (the batch's indices into `seqs`, input_ids, attention_mask). Equal lengths keep their order."""
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        inputs, mask, _ = pad_batch([seqs[i] for i in rows], pad)
        yield rows, inputs, mask


def document_batches(tokenizer, texts: list[str], max_len: int, batch_size: int) -> tuple[Batches, int]:
    """Each document on its own row (BOS first), truncated to `max_len`, sorted by length, padded per batch.

    Returns ([(input_ids, attention_mask)], number of documents that were truncated).
    """
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
    truncated = sum(len(doc) > max_len for doc in ids)
    cut = [doc[:max_len] for doc in ids]
    return [(inputs, mask) for _, inputs, mask in length_sorted_batches(cut, pad_id(tokenizer), batch_size)], truncated


class TokenBatches:
    """Random batches of whole documents (BOS first, cut to the context), padded, with −100 labels on padding.

    Draws without replacement and reshuffles after each pass, from its own seeded generator.
    """

    def __init__(self, tokenizer, texts: list[str], max_len: int, batch_size: int, seed: int):
        ids = [doc[:max_len] for doc in tokenizer(texts, add_special_tokens=True)["input_ids"]]
        self.docs = [d for d in ids if len(d) > 1]
        if not self.docs:
            raise ValueError("no document has two or more tokens")
        self.pad = pad_id(tokenizer)
        self.batch_size = batch_size
        self.rng = random.Random(seed)
        self.order: list[int] = []

    def next(self) -> tuple[Tensor, Tensor, Tensor]:
        chunk: list[list[int]] = []
        while len(chunk) < min(self.batch_size, len(self.docs)):
            if not self.order:
                self.order = list(range(len(self.docs)))
                self.rng.shuffle(self.order)
            chunk.append(self.docs[self.order.pop()])
        return pad_batch(chunk, self.pad)
