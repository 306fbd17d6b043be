"""Shared by the decompose/forget/components tests: the tiny model, recipe and data files, and running
`editor` in-process with its user errors checked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import torch
from typer.testing import CliRunner

from editor.cli import app
from editor.paths import TOKENIZER, TRAIN

runner = CliRunner()

CONTEXT = 64  # max_position_embeddings of the tiny model

RECIPE = """\
name: test-tiny
default_C: 8
ci_fn: {kind: shared_mlp, hidden: 16}
losses:
  - {kind: faithfulness, coeff: 1.0e+6, warmup_steps: 5}
  - {kind: importance_minimality, coeff: 1.0e-3}
  - {kind: stochastic_recon, coeff: 1.0}
  - {kind: persistent_pgd_recon, coeff: 0.5, n_warmup_steps: 1}
steps: 20
batch_size: 4
seq_len: 32
threads: 1
checkpoint_every: 10
eval: {every: 10, batches: 1, pgd_steps: 2}
"""


@dataclass(frozen=True)
class Workspace:
    root: Path
    model: Path  # the tiny Llama + tokenizer (save_pretrained)
    recipe: Path  # RECIPE
    data: Path  # decomposition training text, JSONL
    toxic: Path  # forget set: the first 200 training toxic tweets, JSONL
    retain: Path  # retain set: benign tweets + WikiText lines, JSONL
    dec: Path  # the decomposition written by `editor decompose`
    stdout: str  # what that command printed on stdout


def write_jsonl(path: Path, texts: list[str]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
    return path


def jsonl_texts(path: Path, n: int) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in islice(f, n)]


def wikitext_lines(n: int, words: int = 30) -> list[str]:
    """The first n non-blank WikiText lines, cut to `words` words (short documents, mostly within 64 tokens)."""
    with TRAIN["wikitext"].open(encoding="utf-8") as f:
        lines = (" ".join(line.split()[:words]) for line in f if line.strip())
        return list(islice(lines, n))


def _save_random(config, tok, dest: Path, seed: int) -> Path:
    """A model with random weights from `config` (seeded), saved with `tok`."""
    from transformers import AutoModelForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest


def save_tiny_llama(dest: Path, seed: int = 0) -> Path:
    """A random 2-layer Llama sized for the shipped tokenizer, saved with that tokenizer."""
    from transformers import AutoTokenizer, LlamaConfig

    tok = AutoTokenizer.from_pretrained(TOKENIZER)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=CONTEXT,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    return _save_random(config, tok, dest, seed)


def save_tiny_gpt2(dest: Path, seed: int = 0) -> Path:
    """A random 2-layer GPT-2 (Conv1D matrices, tied embeddings) sized for the shipped tokenizer."""
    from transformers import AutoTokenizer, GPT2Config

    tok = AutoTokenizer.from_pretrained(TOKENIZER)
    config = GPT2Config(
        vocab_size=len(tok),
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_positions=64,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    return _save_random(config, tok, dest, seed)


def invoke(*args: str | Path):
    try:
        return runner.invoke(app, [str(a) for a in args])
    finally:
        torch.set_num_threads(1)  # a recipe's `threads` setting must not leak into later tests


def flat(text: str) -> str:
    """Whitespace collapsed: rich wraps warnings at the console width."""
    return " ".join(text.split())


def assert_clean(result) -> None:
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


def assert_user_error(result, *fragments: str) -> None:
    """Exit code 2, one `error:` message on stderr holding every fragment, nothing on stdout."""
    assert result.exit_code == 2, result.output
    assert_clean(result)
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, f"{fragment!r} not in {result.stderr!r}"


def tree(path: Path) -> dict[str, int]:
    """Every file under `path` with its mtime (ns): equal before and after means nothing was written."""
    return {str(p.relative_to(path)): p.stat().st_mtime_ns for p in sorted(path.rglob("*"))}
