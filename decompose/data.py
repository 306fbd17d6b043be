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
