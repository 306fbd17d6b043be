"""Train a default target model from its recipe, deterministically, and save it with save_pretrained."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from pathlib import Path

import torch

from editor.errors import EditorError
from editor.paths import ROOT, TRAIN
from editor.recipe import dump_recipe
from editor.targets.config import TargetRecipe
from lmkit.files import atomic_dir
from lmkit.texts import load_texts

StepCallback = Callable[[int, float], None]


def training_texts(recipe: TargetRecipe) -> list[str]:
    texts = [t for source in recipe.sources for t in load_texts(TRAIN[source]).texts]
    for extra in recipe.data:
        path = Path(extra.path) if Path(extra.path).is_absolute() else ROOT / extra.path
        if not path.is_file():
            raise EditorError(f"recipe data {extra.path}: no such file")
        texts += load_texts(path).texts * extra.repeat
    random.Random(recipe.train.seed).shuffle(texts)
    return texts


def build_model(recipe: TargetRecipe, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    m = recipe.model
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=m.d_model,
        intermediate_size=m.d_mlp,
        num_hidden_layers=m.n_layers,
        num_attention_heads=m.n_heads,
        num_key_value_heads=m.n_kv_heads,
        max_position_embeddings=m.max_seq_len,
        tie_word_embeddings=m.tie_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


def lr_at(step: int, recipe: TargetRecipe) -> float:
    t = recipe.train
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    frac = (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps)
    return t.lr * (t.min_lr_frac + (1 - t.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * frac)))


def train_target(recipe: TargetRecipe, tokenizer, texts: list[str], on_step: StepCallback | None = None):
    """Return the trained model and its per-step loss log. Same recipe + texts + threads → same weights."""
    from decompose.data import random_windows, token_stream

    t = recipe.train
    torch.set_num_threads(t.threads)
    torch.manual_seed(t.seed)
    model = build_model(recipe, tokenizer)
    stream = token_stream(tokenizer, texts)
    gen = torch.Generator().manual_seed(t.seed)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=t.lr,
        betas=(0.9, 0.95),
    )
    model.train()
    log: list[float] = []
    for step in range(t.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, recipe)
        batch = random_windows(stream, t.batch_size, t.seq_len, gen)
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        opt.step()
        log.append(loss.item())
        if on_step is not None:
            on_step(step, log[-1])
    model.eval()
    return model, {"tokens_in_stream": stream.numel(), "loss": log}


def save_target(model, tokenizer, recipe: TargetRecipe, log: dict, seconds: float, out: Path, force: bool = False) -> Path:
    """Write the checkpoint atomically: a temporary sibling, renamed into place when complete."""
    losses = log["loss"]
    summary = {
        "tokens_in_stream": log["tokens_in_stream"],
        "final_train_loss_mean_last_100": sum(losses[-100:]) / len(losses[-100:]),
        "seconds": round(seconds, 1),
        "torch": torch.__version__,
        "loss_every_50": losses[::50],
    }
    with atomic_dir(out, "build", force=force) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "recipe.yaml").write_text(dump_recipe(recipe), encoding="utf-8")
        (tmp / "training.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return out


def build_target(recipe: TargetRecipe, tokenizer_dir: Path, out: Path, on_step: StepCallback | None = None, force: bool = False) -> Path:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    start = time.perf_counter()
    model, log = train_target(recipe, tokenizer, training_texts(recipe), on_step)
    return save_target(model, tokenizer, recipe, log, time.perf_counter() - start, out, force)
