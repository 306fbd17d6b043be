"""Sampled continuations of prompts, seeded so a report can be reproduced."""

from __future__ import annotations

import torch


@torch.no_grad()
def sample(
    model,
    tokenizer,
    prompts: list[str],
    n: int = 1,
    max_new_tokens: int = 30,
    temperature: float = 1.0,
    top_p: float = 0.9,
    seed: int = 0,
) -> list[list[str]]:
    """`n` nucleus-sampled continuations per prompt (the continuation only, without the prompt)."""
    torch.manual_seed(seed)
    out: list[list[str]] = []
    device = next(model.parameters()).device
    for prompt in prompts:
        enc = tokenizer(prompt, return_tensors="pt").to(device)
        gen = model.generate(
            **enc,
            do_sample=True,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            num_return_sequences=n,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new = gen[:, enc["input_ids"].shape[1] :]
        out.append([tokenizer.decode(row, skip_special_tokens=True).strip() for row in new])
    return out
