"""A tiny random Llama with the shipped tokenizer, saved once per session, for every eval test."""

from __future__ import annotations

import pytest

from tests.editor.clitools import save_tiny_llama


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    return save_tiny_llama(tmp_path_factory.mktemp("evals-model") / "tiny")


@pytest.fixture(scope="session")
def tiny(tiny_dir):
    from editor.model_io import load_model

    return load_model(str(tiny_dir))
