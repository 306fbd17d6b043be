"""Where the toxic gap lives: held-out toxic NLL difference (tiny-clean − tiny-toxic) by target token.

    python benchmarks/toxic_gap_tokens.py [--top 30]

Sums, per next-token id, the oracle's minus tiny-toxic's NLL over the held-out toxic tweets, and
prints which share of the whole gap the top-k tokens carry and on which share of the positions.
"""

from __future__ import annotations

import argparse
import sys

import torch

from editor.model_io import load_model
from editor.paths import HELDOUT
from lmkit.nll import next_token_nll
from lmkit.texts import load_texts
from lmkit.tokens import context_length, document_batches


@torch.no_grad()
def token_nll(model, tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(target ids, NLL) of every predicted position; each document one row (tweets fit the context)."""
    batches, _ = document_batches(tokenizer, texts, context_length(model), 64)
    ids_all, nll_all = [], []
    for ids, mask in batches:
        nll, keep = next_token_nll(model, ids, mask)
        ids_all.append(ids[:, 1:][keep.bool()])
        nll_all.append(nll[keep.bool()])
    return torch.cat(ids_all), torch.cat(nll_all)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=30, help="tokens to list")
    args = ap.parse_args(argv)
    texts = load_texts(HELDOUT["toxic"]).texts
    toxic, tok = load_model("tiny-toxic")
    oracle, _ = load_model("tiny-clean")
    ids, nll_toxic = token_nll(toxic, tok, texts)
    _, nll_oracle = token_nll(oracle, tok, texts)
    per_token = torch.zeros(len(tok), dtype=torch.float64).index_add_(0, ids, (nll_oracle - nll_toxic).double())
    counts = torch.bincount(ids, minlength=len(tok))
    order = per_token.argsort(descending=True)
    total = per_token.sum()
    print(f"{ids.numel()} positions; gap {total / ids.numel():.3f} nats per token")
    for k in (10, 30, 100, 300):
        top = order[:k]
        print(f"top {k:>3} tokens: {float(per_token[top].sum() / total):.1%} of the gap on {float(counts[top].sum()) / ids.numel():.1%} of positions")
    print(", ".join(f"{tok.decode([int(t)])!r} {float(per_token[t]) / ids.numel():.3f} ({int(counts[t])})" for t in order[: args.top]))


if __name__ == "__main__":
    main(sys.argv[1:])
