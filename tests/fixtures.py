"""Tiny random causal LMs built from configs (no network), one per supported architecture."""

from __future__ import annotations

import torch
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    Phi3Config,
    PreTrainedModel,
    Qwen2Config,
)

ARCHS = ["llama", "gpt2", "gpt_neox", "qwen2", "mistral", "phi3"]
VOCAB = 97
N_LAYERS = 2

# Special-token ids inside the tiny vocab, so transformers does not warn about out-of-range defaults.
_TOKENS = dict(bos_token_id=1, eos_token_id=2, pad_token_id=0)
_LLAMA_LIKE = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=N_LAYERS,
    num_attention_heads=4,
    num_key_value_heads=2,  # grouped-query attention, so k/v shapes differ from q
    max_position_embeddings=64,
    tie_word_embeddings=False,
    **_TOKENS,
)


def _config(arch: str):
    if arch == "llama":
        return LlamaConfig(**_LLAMA_LIKE)
    if arch == "mistral":
        return MistralConfig(**_LLAMA_LIKE)
    if arch == "qwen2":
        return Qwen2Config(**_LLAMA_LIKE)  # q/k/v carry biases in Qwen2
    if arch == "phi3":
        return Phi3Config(**_LLAMA_LIKE)
    if arch == "gpt2":  # Conv1D layers, tied embeddings
        return GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=N_LAYERS, n_head=4, n_positions=64, **_TOKENS)
    if arch == "gpt_neox":
        return GPTNeoXConfig(
            vocab_size=VOCAB,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=N_LAYERS,
            num_attention_heads=4,
            max_position_embeddings=64,
            **_TOKENS,
        )
    raise ValueError(f"unknown arch {arch!r}; known: {ARCHS}")


def tiny_model(arch: str, seed: int = 0) -> PreTrainedModel:
    """A 2-layer float32 model in eval mode with eager attention; same seed → same weights."""
    config = _config(arch)
    config._attn_implementation = "eager"  # the one attention path that is the same everywhere
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG stream untouched
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    return model.float().eval()


def tiny_input(vocab: int, batch: int = 2, seq: int = 7, seed: int = 0) -> torch.Tensor:
    """Random token ids of shape (batch, seq), int64."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (batch, seq), generator=g)
