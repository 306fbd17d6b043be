"""Load a causal LM and its tokenizer from a shipped name, a local directory, or (online only) a hub id."""

from __future__ import annotations

import json
import os
from pathlib import Path

from editor.errors import EditorError
from editor.paths import MODELS

DEFAULT_MODEL = "tiny-toxic"


def shipped_origin(model: str | None) -> str | None:
    """The shipped model `model` is, or the one an `editor forget` output was made from (else None)."""
    shipped = shipped_name(model)
    if shipped is None and model and (Path(model) / "edit.json").is_file():
        try:
            shipped = shipped_name(read_edit_record(model)["model"]["source"])
        except (OSError, EditorError, KeyError, TypeError):
            shipped = None
    return shipped


def default_oracle(model: str | None) -> str | None:
    """The oracle of a shipped target model or of an edit of one (else None): the same recipe trained
    without the data it is asked to forget (`editor.target_data`)."""
    from editor.target_data import oracle_of

    return oracle_of(shipped_origin(model))


def default_data(model: str | None):
    """The default forget, retain and held-out data of `model`'s target (`editor.target_data.TargetData`)."""
    from editor.target_data import target_data

    return target_data(shipped_origin(model))


def set_offline_defaults() -> None:
    """Offline unless the user opted in: a hub id then fails at once instead of retrying for ~45 s."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def shipped_names() -> list[str]:
    return sorted(p.name for p in MODELS.iterdir() if (p / "config.json").is_file()) if MODELS.is_dir() else []


def resolve_model(name_or_path: str | None, option: str = "--model") -> str:
    """A local directory for shipped names and paths; hub ids are returned unchanged. Errors name `option`."""
    name = str(name_or_path or DEFAULT_MODEL)
    shipped = shipped_name(name)
    if shipped:
        return str(MODELS / shipped)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise EditorError(f"{option} {name}: {path} is not a Hugging Face model directory (no config.json)")
        return str(path.resolve())
    if is_local_path(name):
        raise EditorError(f"{option} {name}: no such model directory")
    return name


def is_local_path(name: str) -> bool:
    """Whether a model name is a folder path, relative or absolute, rather than a Hub id (`org/name`) or a shipped
    name: the guess from the name alone, for when the folder is not there to look at."""
    return not name or name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def weights_bytes(source: str) -> int:
    """Bytes of a local model's weight files (0 for a hub id): about what an export of it writes."""
    path = Path(source)
    return sum(f.stat().st_size for f in path.glob("*.safetensors")) + sum(f.stat().st_size for f in path.glob("*.bin")) if path.is_dir() else 0


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


def shipped_name(name_or_path: str | None) -> str | None:
    """The shipped model's name if `name_or_path` is one (by name or by its directory), else None."""
    name = str(name_or_path or DEFAULT_MODEL)
    if "/" not in name and "\\" not in name and (MODELS / name / "config.json").is_file():
        return name
    path = Path(name).expanduser()
    if path.is_dir() and path.resolve().parent == MODELS.resolve() and (path / "config.json").is_file():
        return path.resolve().name
    return None


def portable_name(name_or_path: str | None, out: Path) -> str:
    """How a manifest or adapter names a model without this machine's absolute paths: a shipped model by its
    name, a hub id as is, a local directory by its path relative to the output folder `out`."""
    shipped = shipped_name(name_or_path)
    if shipped:
        return shipped
    path = Path(name_or_path or "").expanduser()
    if not path.exists():
        return str(name_or_path)
    return os.path.relpath(path.resolve(), Path(out).resolve())


def decomposition_dir(model_name: str | None, decomposition: Path | None) -> Path:
    """The decomposition folder to use: the one given, else the shipped one for a shipped model (light, before torch)."""
    from editor.paths import DECOMPOSITIONS

    if decomposition is not None:
        return decomposition
    shipped = shipped_name(model_name)
    if shipped is None or not (DECOMPOSITIONS / shipped).is_dir():
        raise EditorError(f"no shipped decomposition for --model {model_name}: pass --decomposition DIR (see `editor decompose`)")
    return DECOMPOSITIONS / shipped


def portable_path(path: Path, out: Path) -> str:
    """A folder as a manifest records it: repository-relative inside this checkout, else relative to the output `out`."""
    from editor.paths import ROOT

    resolved = Path(path).resolve()
    if resolved.is_relative_to(ROOT):
        return str(resolved.relative_to(ROOT))
    return os.path.relpath(resolved, Path(out).resolve())


def load_decomposition_for(model, model_name: str | None, decomposition: Path | None):
    """The decomposition to use with `model`: the given directory, else the shipped one for a shipped model."""
    from decompose.io import load_decomposition

    return load_decomposition(model, decomposition_dir(model_name, decomposition))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise EditorError(f"cannot read {path}: {e}") from None


def _is_adapter_only(model: str | None) -> bool:
    return bool(model) and (Path(str(model)) / "adapter_config.json").is_file() and not (Path(str(model)) / "config.json").is_file()


def check_eval_inputs(model: str | None, adapter: Path | None) -> None:
    """The model and adapter `editor eval` was given exist (light checks, before torch loads)."""
    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        what = "no such folder" if not adapter.is_dir() else "not a PEFT adapter directory (no adapter_config.json)"
        raise EditorError(f"--adapter {adapter}: {what}")
    if not _is_adapter_only(model):
        resolve_model(model)


def load_for_eval(model: str | None, adapter: Path | None):
    """(model for lm-eval, plain model for everything else, tokenizer, description).

    `--adapter DIR`, or `--model DIR` holding only a PEFT adapter, gives base + adapter: lm-eval sees the
    unmerged PeftModel, the rest a merged copy. An `editor forget` output directory holds the merged model at
    its root, which is what is loaded.
    """
    import copy
    import warnings

    if adapter is None and _is_adapter_only(model):
        adapter, model = Path(str(model)), None
    if adapter is None:
        lm, tok = load_model(model)
        path = resolve_model(model)
        info = {"name": Path(path).name if Path(path).exists() else path, "path": path}
        if (Path(path) / "adapter" / "adapter_config.json").is_file():
            info["note"] = "editor forget output: the merged model at its root was evaluated"
        return lm, lm, tok, info
    if not (adapter / "adapter_config.json").is_file():
        raise EditorError(f"{adapter} is not a PEFT adapter directory (no adapter_config.json)")
    base = model or _read_json(adapter / "adapter_config.json").get("base_model_name_or_path") or DEFAULT_MODEL
    try:
        base_model, tok = load_model(base)
    except EditorError as e:
        raise EditorError(f"{e} (the adapter's base model; pass --model BASE to choose another)") from None
    from peft import PeftModel

    try:
        peft_model = PeftModel.from_pretrained(base_model, str(adapter), is_trainable=False)
    except Exception as e:  # peft raises ValueError/KeyError/RuntimeError for a mismatched adapter
        raise EditorError(f"could not apply the adapter {adapter} to {base}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    peft_model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers deprecation noise from copying a PeftModel
        merged = copy.deepcopy(peft_model).merge_and_unload()
    merged.eval()
    path = resolve_model(base)
    return peft_model, merged, tok, {"name": f"{Path(path).name}+{adapter.name}", "path": path, "adapter": str(adapter)}


def read_edit_record(out: str | Path, label: str = "") -> dict:
    """The `edit.json` of an `editor forget` output (light: no torch). `label` prefixes the messages (e.g. "--edit")."""
    where = f"{label} {out}".strip()
    path = Path(out) / "edit.json"
    if not path.is_file():
        raise EditorError(f"{where}: not an `editor forget` output (no edit.json)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise EditorError(f"{where}: edit.json is not valid JSON ({e})") from None
