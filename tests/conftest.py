"""Shared test setup: offline hub, one torch thread, and `--runslow` for tests marked `slow`."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Keep CPU use small; restore the thread count a test (e.g. train_target) may have changed."""
    import torch

    torch.set_num_threads(1)
    yield
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shipped_tokenizer():
    """The shipped BPE tokenizer (examples/models/tokenizer)."""
    from transformers import AutoTokenizer

    from editor.paths import TOKENIZER

    return AutoTokenizer.from_pretrained(TOKENIZER)
