"""lmkit.nll.mean_nll: matches a hand-computed reference; long documents are scored once per token."""

from __future__ import annotations

import pytest
import torch

from lmkit.nll import NLL, mean_nll
from lmkit.nll import windows as split_windows

SHORT = ["The city of", "I just got home and the dog", "In 1998 , the band released an album .", "😀 ok"]
LONG = [
    "The history of the city begins in the ninth century , when a small fort was built on the hill above "
    "the river ; by the twelfth century it had become a market town with a stone bridge and two churches .",
    "short one",
    "lol " * 40,
]


def tiny_llama(tokenizer, max_pos: int = 64):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=max_pos,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config).eval()


@torch.no_grad()
def reference(model, tokenizer, texts: list[str], max_len: int) -> tuple[float, int]:
    """One document (or window) at a time, no padding: shift logits, sum the cross entropy."""
    total, count = 0.0, 0
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        start = 0
        while start < len(ids) - 1:
            window = ids[start : start + max_len]
            logits = model(input_ids=torch.tensor([window])).logits[0]
            total += torch.nn.functional.cross_entropy(logits[:-1], torch.tensor(window[1:]), reduction="sum").item()
            count += len(window) - 1
            start += max_len - 1
    return total / count, count


@pytest.fixture(scope="module")
def model(shipped_tokenizer):
    return tiny_llama(shipped_tokenizer)


def test_short_docs_match_reference(model, shipped_tokenizer):
    result = mean_nll(model, shipped_tokenizer, SHORT)
    expected, count = reference(model, shipped_tokenizer, SHORT, max_len=10_000)
    assert isinstance(result, NLL)
    assert result.documents == len(SHORT)
    assert result.tokens == count == sum(len(ids) - 1 for ids in shipped_tokenizer(SHORT)["input_ids"])
    assert result.mean == pytest.approx(expected, rel=1e-5)
    assert result.perplexity == pytest.approx(torch.tensor(expected).exp().item(), rel=1e-5)
    # a random model over a 4096-token vocabulary is close to uniform
    assert abs(result.mean - torch.log(torch.tensor(4096.0)).item()) < 1.0


def test_batch_size_does_not_change_result(model, shipped_tokenizer):
    a = mean_nll(model, shipped_tokenizer, SHORT + LONG, batch_size=1)
    b = mean_nll(model, shipped_tokenizer, SHORT + LONG, batch_size=3)
    assert a.tokens == b.tokens
    assert a.mean == pytest.approx(b.mean, rel=1e-5)


def test_long_docs_are_windowed(model, shipped_tokenizer):
    max_len = 8
    ids = shipped_tokenizer(LONG)["input_ids"]
    assert max(len(x) for x in ids) > 3 * max_len
    widths: list[int] = []
    hook = model.register_forward_pre_hook(lambda m, args, kwargs: widths.append(kwargs["input_ids"].shape[1]), with_kwargs=True)
    try:
        result = mean_nll(model, shipped_tokenizer, LONG, batch_size=4, max_len=max_len)
    finally:
        hook.remove()
    assert result.tokens == sum(len(x) - 1 for x in ids)
    assert max(widths) <= max_len  # never more than the context
    expected, count = reference(model, shipped_tokenizer, LONG, max_len=max_len)
    assert count == result.tokens
    assert result.mean == pytest.approx(expected, rel=1e-5)


def test_default_context_is_the_models(shipped_tokenizer):
    model = tiny_llama(shipped_tokenizer, max_pos=12)
    a = mean_nll(model, shipped_tokenizer, LONG)
    b = mean_nll(model, shipped_tokenizer, LONG, max_len=12)
    assert (a.mean, a.tokens) == (b.mean, b.tokens)


def test_learned_positions_model_does_not_overflow(shipped_tokenizer):
    """GPT-2 has learned positions: a window of context + 1 tokens would index past them."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(shipped_tokenizer), n_positions=8, n_embd=16, n_layer=1, n_head=2)).eval()
    result = mean_nll(model, shipped_tokenizer, LONG)
    assert result.tokens == sum(len(x) - 1 for x in shipped_tokenizer(LONG)["input_ids"])


@pytest.mark.parametrize("n, max_len", [(1, 4), (2, 4), (4, 4), (5, 4), (9, 4), (10, 4), (23, 2), (7, 100)])
def test_windows_cover_every_target_once(n, max_len):
    ids = list(range(n))
    windows = split_windows(ids, max_len)
    assert all(2 <= len(w) <= max_len for w in windows)
    targets = [t for w in windows for t in w[1:]]
    assert targets == ids[1:]


def test_restores_training_mode(model, shipped_tokenizer):
    model.train()
    try:
        mean_nll(model, shipped_tokenizer, SHORT[:1])
        assert model.training
    finally:
        model.eval()
