"""Tiny saved models (shipped tokenizer) and small forget/retain files for the baseline and compare tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from editor.paths import TRAIN
from tests.editor.clitools import jsonl_texts, save_tiny_gpt2, save_tiny_llama, wikitext_lines, write_jsonl


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
