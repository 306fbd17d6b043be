"""One tiny decomposition for the `editor decompose / forget / components` tests, trained once per session.

The model is a 2-layer random Llama (hidden 32) with the shipped 4096-token tokenizer, saved with
`save_pretrained`; the decomposition is trained on it through the CLI (`editor decompose`) with a
20-step recipe, so every later test loads exactly what a user's run would have written.
"""

from __future__ import annotations

import pytest

from editor.paths import TRAIN
from tests.editor.clitools import RECIPE, Workspace, invoke, jsonl_texts, save_tiny_llama, wikitext_lines, write_jsonl


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Workspace:
    import torch

    torch.set_num_threads(1)  # session fixtures run before the per-test thread fixture
    root = tmp_path_factory.mktemp("editor-ws")
    model = save_tiny_llama(root / "model")
    recipe = root / "recipe.yaml"
    recipe.write_text(RECIPE)
    data = write_jsonl(root / "train.jsonl", jsonl_texts(TRAIN["benign"], 150) + wikitext_lines(150))
    toxic = write_jsonl(root / "toxic.jsonl", jsonl_texts(TRAIN["toxic"], 200))
    retain = write_jsonl(root / "retain.jsonl", jsonl_texts(TRAIN["benign"], 300)[150:] + wikitext_lines(300)[150:])
    dec = root / "dec"
    result = invoke("decompose", "--model", model, "--data", data, "--recipe", recipe, "--out", dec)
    assert result.exit_code == 0, result.output
    return Workspace(root, model, recipe, data, toxic, retain, dec, result.stdout)
