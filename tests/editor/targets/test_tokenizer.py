"""The shared byte-level BPE tokenizer: the shipped one, and training a new one."""

from __future__ import annotations

import pytest

from editor.targets.tokenizer import EOT, PAD, train_tokenizer

SAMPLES = [
    "hello world",
    "The history of the city , in 1998 .",
    "  two leading spaces and trailing  ",
    "Café naïve résumé — “quotes” ½ °C",
    "日本語のテキスト 한국어 русский текст",
    "emoji 😀🔥👍🏽 and a family 👨‍👩‍👧",
    "RT @user: #hashtag URL !!!",
    "tabs\tand\nnewlines",
    "<unk> @-@ 3 @,@ 000",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_shipped_round_trip(shipped_tokenizer, text):
    ids = shipped_tokenizer(text)["input_ids"]
    assert shipped_tokenizer.decode(ids, skip_special_tokens=True) == text


def test_shipped_prepends_bos(shipped_tokenizer):
    tok = shipped_tokenizer
    eot_id = tok.convert_tokens_to_ids(EOT)
    assert tok.bos_token == EOT and tok.bos_token_id == eot_id
    assert tok.eos_token_id == eot_id
    for text in ("a", "hello world", "😀"):
        ids = tok(text)["input_ids"]
        assert ids[0] == eot_id
        assert eot_id not in ids[1:]
    batch = tok(["one", "two three"])["input_ids"]
    assert all(ids[0] == eot_id for ids in batch)
    assert tok("hello", add_special_tokens=False)["input_ids"][0] != eot_id


def test_shipped_special_tokens(shipped_tokenizer):
    tok = shipped_tokenizer
    assert tok.pad_token == PAD
    assert tok.pad_token_id == tok.convert_tokens_to_ids(PAD)
    assert tok.pad_token_id != tok.bos_token_id
    assert tok.unk_token == EOT
    assert len(tok) == 4096


def test_train_tokenizer_small(tmp_path):
    from transformers import AutoTokenizer

    corpus = [
        "the cat sat on the mat",
        "the dog sat on the log",
        "Café naïve 😀 日本",
        "a quick brown fox jumps over the lazy dog",
    ] * 5
    out = tmp_path / "tok"
    train_tokenizer(corpus, vocab_size=300, out=out)
    assert (out / "tokenizer.json").is_file()
    tok = AutoTokenizer.from_pretrained(out)
    assert len(tok) <= 300
    assert tok.bos_token == EOT and tok.pad_token == PAD
    eot_id = tok.convert_tokens_to_ids(EOT)
    for text in corpus[:4] + ["unseen words ✓ 🐍"]:
        ids = tok(text)["input_ids"]
        assert ids[0] == eot_id
        assert tok.decode(ids, skip_special_tokens=True) == text
    # byte-level: every byte is in the alphabet, so nothing maps to unk even for unseen characters
    assert eot_id not in tok("🐍 ✓ ﷽")["input_ids"][1:]


def test_train_tokenizer_deterministic(tmp_path):
    corpus = ["one two three four", "five six seven eight", "one two five six"] * 3
    train_tokenizer(corpus, 280, tmp_path / "a")
    train_tokenizer(corpus, 280, tmp_path / "b")
    assert (tmp_path / "a/tokenizer.json").read_bytes() == (tmp_path / "b/tokenizer.json").read_bytes()
