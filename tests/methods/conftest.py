"""Tiny saved models (shipped tokenizer) and small forget/retain files for the baseline and compare tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from editor.paths import TOKENIZER, TRAIN
from tests.editor.clitools import jsonl_texts, save_tiny_llama, wikitext_lines, write_jsonl


def save_tiny_gpt2(dest: Path, seed: int = 0) -> Path:
    """A random 2-layer GPT-2 (Conv1D matrices, tied embeddings) sized for the shipped tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config

    tok = AutoTokenizer.from_pretrained(TOKENIZER)
    config = GPT2Config(
        vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=64,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest


@dataclass(frozen=True)
class Files:
    models: dict[str, Path]  # arch → saved tiny model directory
    forget: Path  # 24 training toxic tweets
    retain: Path  # 12 benign tweets + 12 WikiText lines
    forget_texts: list[str]
    retain_texts: list[str]


@pytest.fixture(scope="session")
def files(tmp_path_factory) -> Files:
    root = tmp_path_factory.mktemp("methods")
    forget = jsonl_texts(TRAIN["toxic"], 24)
    retain = jsonl_texts(TRAIN["benign"], 12) + wikitext_lines(12)
    return Files(
        models={"llama": save_tiny_llama(root / "llama"), "gpt2": save_tiny_gpt2(root / "gpt2")},
        forget=write_jsonl(root / "forget.jsonl", forget),
        retain=write_jsonl(root / "retain.jsonl", retain),
        forget_texts=forget,
        retain_texts=retain,
    )
