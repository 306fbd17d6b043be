"""The shipped artefacts: checkpoints load with plain transformers, the decomposition fits its model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from decompose.io import load_decomposition
from editor.paths import DECOMPOSITIONS, FORGET_DEFAULT, HELDOUT, MODELS, TRAIN

SHIPPED_MODELS = ["tiny-toxic", "tiny-clean"]


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_shipped_model_loads_with_plain_transformers(name):
    path = MODELS / name
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.vocab_size == len(tok) == 4096
    ids = tok("The city of", return_tensors="pt").input_ids
    assert ids[0, 0].item() == tok.bos_token_id
    assert torch.isfinite(model(ids).logits).all()


def test_both_targets_share_one_tokenizer():
    a, b = (AutoTokenizer.from_pretrained(MODELS / n) for n in SHIPPED_MODELS)
    text = "Both models see the same tokens 123 🙂"
    assert a(text).input_ids == b(text).input_ids == AutoTokenizer.from_pretrained(MODELS / "tokenizer")(text).input_ids


def test_shipped_weights_within_budget():
    # Issue budgets: targets ≤ 25 MB together, the default decomposition ≤ 25 MB.
    assert sum(_size_mb(MODELS / n) for n in SHIPPED_MODELS) <= 25
    assert _size_mb(DECOMPOSITIONS / "tiny-toxic") <= 25


def test_shipped_decomposition_fits_tiny_toxic_and_not_tiny_clean():
    from decompose.errors import DecompositionError

    dec = load_decomposition(AutoModelForCausalLM.from_pretrained(MODELS / "tiny-toxic"), DECOMPOSITIONS / "tiny-toxic")
    assert len(dec.cm.names) == 28
    metrics = dec.manifest["metrics"]
    for key in ("ce/target", "ce/unmasked", "ce/ci_masked", "kl/pgd", "l0/mean_per_matrix", "alive/total"):
        assert key in metrics
    with pytest.raises(DecompositionError, match="was trained on model"):
        load_decomposition(AutoModelForCausalLM.from_pretrained(MODELS / "tiny-clean"), DECOMPOSITIONS / "tiny-toxic")


def test_example_forget_set_is_from_the_training_split():
    forget = FORGET_DEFAULT.read_text(encoding="utf-8").splitlines()
    train = set(TRAIN["toxic"].read_text(encoding="utf-8").splitlines())
    heldout = set(HELDOUT["toxic"].read_text(encoding="utf-8").splitlines())
    assert len(forget) == 2000
    assert set(forget) <= train
    assert not set(forget) & heldout
