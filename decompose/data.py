"""Text → token windows: documents are joined with the BOS/EOS separator and cut into fixed windows."""

from __future__ import annotations

import torch


def token_stream(tokenizer, texts: list[str]) -> torch.Tensor:
    """All documents tokenized (each starting with the tokenizer's BOS) and concatenated, as int64."""
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
    return torch.tensor([t for doc in ids for t in doc], dtype=torch.long)


def random_windows(stream: torch.Tensor, batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """`batch` windows of `length` tokens starting at uniform random offsets of the stream."""
    if stream.numel() <= length:
        raise ValueError(f"token stream of {stream.numel()} tokens is too short for windows of {length}")
    starts = torch.randint(0, stream.numel() - length, (batch,), generator=generator)
    return torch.stack([stream[s : s + length] for s in starts.tolist()])


def document_batches(
    tokenizer, texts: list[str], max_len: int, batch_size: int
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], int]:
    """Each document on its own row (BOS first), truncated to `max_len`, padded per batch.

    Returns ([(input_ids, attention_mask)], number of documents that were truncated).
    """
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
    truncated = sum(len(doc) > max_len for doc in ids)
    ids = sorted((doc[:max_len] for doc in ids), key=len)  # similar lengths per batch: less padding
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batches = []
    for i in range(0, len(ids), batch_size):
        chunk = ids[i : i + batch_size]
        width = max(len(d) for d in chunk)
        inp = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, doc in enumerate(chunk):
            inp[row, : len(doc)] = torch.tensor(doc)
            mask[row, : len(doc)] = 1
        batches.append((inp, mask))
    return batches, truncated
