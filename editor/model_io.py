"""Load a causal LM and its tokenizer from a shipped name, a local directory, or (online only) a hub id."""

from __future__ import annotations

import os
from pathlib import Path

from editor.errors import EditorError
from editor.paths import MODELS

DEFAULT_MODEL = "tiny-toxic"


def set_offline_defaults() -> None:
    """Offline unless the user opted in: a hub id then fails at once instead of retrying for ~45 s."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def shipped_names() -> list[str]:
    return sorted(p.name for p in MODELS.iterdir() if (p / "config.json").is_file()) if MODELS.is_dir() else []


def resolve_model(name_or_path: str | None) -> str:
    """A local directory for shipped names and paths; hub ids are returned unchanged."""
    name = name_or_path or DEFAULT_MODEL
    if (MODELS / name / "config.json").is_file():
        return str(MODELS / name)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise EditorError(f"{path} is not a Hugging Face model directory (no config.json)")
        return str(path.resolve())
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise EditorError(f"no such model directory: {path}")
    return name


def load_model(name_or_path: str | None = None, dtype=None):
    """Return (model in eval mode, tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress bars are the ones on stderr
    source = resolve_model(name_or_path)
    local = Path(source).is_dir()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
        model = AutoModelForCausalLM.from_pretrained(source, local_files_only=local, dtype=dtype)
    except (OSError, ValueError) as e:
        hint = (
            " It is not a local directory nor a shipped model"
            f" ({', '.join(shipped_names()) or 'none shipped'}); hub ids need network access:"
            " set HF_HUB_OFFLINE=0 where there is one."
            if not local
            else ""
        )
        detail = (str(e).splitlines() or [type(e).__name__])[0].rstrip(".")
        raise EditorError(f"could not load model '{source}': {detail}.{hint}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    return model, tokenizer
