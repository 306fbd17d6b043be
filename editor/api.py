"""editor's Python API: the calls the `editor` commands make, for notebooks and scripts.

    from editor import api

    model, tokenizer = api.load_model("tiny-toxic")                      # a shipped name, a folder or a hub id
    edit = api.forget(model, tokenizer, "examples/forget/toxic.jsonl")    # an editor.edit.Edit; model unchanged
    edit.summary, edit.components[0].fires_on, edit.metrics["after"]
    applied = edit.apply(model); ...; applied.revert()                    # in place, and back bit for bit
    api.save(edit, model, tokenizer, "runs/detoxed")                      # what `editor forget --out` writes
    report = api.evaluate(model, tokenizer, limit=50)                     # what `editor eval --json` prints

(It is `editor.api.forget`, not `editor.forget`: that name is the module `editor/forget.py`.)

Data arguments take one source (a path or hub id as a `str` or `Path`: JSONL, text, Parquet, CSV, a
`save_to_disk` folder), a list of `Path`s (several sources, concatenated), a list of documents (`list[str]`),
or a `lmkit.texts.TextDataset`. Bad input raises `editor.errors.EditorError` (an `lmkit.errors.UserError`)
with the message the CLI prints; nothing here prints or draws progress bars (pass `progress=`/`status=`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from editor.errors import EditorError
from lmkit.texts import TextDataset

# torch and pydantic load inside the calls that need them: importing the API (and `editor --help`) stays fast.
if TYPE_CHECKING:
    from decompose.config_base import BaseConfig
    from editor.edit import Edit

Data = str | Path | Sequence[str] | TextDataset


def load_model(name_or_path: str | Path | None = None, dtype=None):
    """(model in eval mode, tokenizer) from a shipped name (`tiny-toxic`, the default), a local folder or a hub id."""
    from editor.model_io import load_model as _load

    return _load(None if name_or_path is None else str(name_or_path), dtype=dtype)


def load_data(sources: Data | Sequence[str | Path], text_field: str = "text") -> TextDataset:
    """Documents from one source (str or Path), several sources (a list of Paths, concatenated), a list of
    documents (a list of str), or a TextDataset (returned as is)."""
    from lmkit.texts import load_many

    if isinstance(sources, TextDataset):
        return sources
    if isinstance(sources, (str, Path)):
        return load_many([str(sources)], text_field)
    items = list(sources)
    if items and all(isinstance(s, Path) for s in items):
        return load_many([str(s) for s in items], text_field)
    if not all(isinstance(s, str) for s in items):
        raise EditorError("data: expected a path, a list of documents (str) or a TextDataset")
    texts = [t for t in items if isinstance(t, str) and t.strip()]
    if not texts:
        raise EditorError("data: the list holds no non-blank documents")
    return TextDataset(source=f"{len(texts)} documents given in Python", texts=texts)


def _model_name(model) -> str:
    return str(getattr(model, "name_or_path", "") or getattr(getattr(model, "config", None), "_name_or_path", "") or "")


def load_decomposition(model, path: str | Path | None = None):
    """The decomposition at `path` for `model` (its fingerprint is checked); `None`: the shipped one of a shipped model."""
    from editor.model_io import load_decomposition_for

    return load_decomposition_for(model, _model_name(model) or None, None if path is None else Path(path))


def forget(
    model,
    tokenizer,
    forget: Data,
    retain: Data | None = None,
    *,
    method: str = "vpd",
    strength: float | None = None,
    settings: dict[str, Any] | list[str] | BaseConfig | None = None,
    decomposition=None,
    text_field: str = "text",
    source: str | None = None,
    progress=None,
) -> Edit:
    """Make `model` forget `forget` while keeping `retain`, and return the measured `Edit`; `model` is left unchanged.

    Args:
        method: a VPD edit kind (`vpd`, the default, `vpd-scale`, `vpd-project`, `vpd-remove`) or a baseline
            (`ga`, `graddiff`, `npo`, `task-vector`), as `editor forget --method`.
        strength: the method's main knob (`--strength`); `settings`: any other method setting, as a dict, as
            `key=value` strings (`--set`), or the method's validated settings object.
        retain: default, the training data the model's target keeps (`editor.target_data`): WikiText + benign
            tweets; for tiny-facts, WikiText + the retained people's biographies.
        decomposition: a loaded decomposition (`load_decomposition`), a folder, or None for the shipped one of a
            shipped model (VPD kinds only).
        source: how the edit records the model (default: its shipped name, else its `name_or_path`).
        progress: an `editor.methods.base.Progress` (status text and step callbacks).
    """
    from decompose.config_base import BaseConfig
    from editor.forget import forget as run_forget
    from editor.forget import method_settings
    from editor.methods import get_method
    from editor.methods.base import Progress
    from editor.model_io import default_data, shipped_name

    m = get_method(method)
    forget_data = load_data(forget, text_field)
    retain_data = load_data(retain if retain is not None else list(default_data(_model_name(model) or None).retain), text_field)
    chosen = settings if isinstance(settings, BaseConfig) else method_settings(m, strength, settings)
    if isinstance(settings, BaseConfig) and strength is not None:
        raise EditorError("pass the strength inside settings= when settings is a validated settings object")
    if m.needs_decomposition and (decomposition is None or isinstance(decomposition, (str, Path))):
        decomposition = load_decomposition(model, decomposition)
    name = _model_name(model)
    return run_forget(
        m.name,
        model,
        tokenizer,
        forget_data,
        retain_data,
        chosen,
        decomposition=decomposition if m.needs_decomposition else None,
        source=source if source is not None else (shipped_name(name) or name),
        progress=progress or Progress(),
    )


def as_saved(edit: Edit, out: str | Path, base_model: str | None = None) -> Edit:
    """The edit as `save(edit, ..., out)` records it in `edit.json`: the model (`base_model`, default its recorded
    source) by its portable name and the decomposition by its portable path (`editor.model_io`), a local folder
    relative to `out`, so no absolute path of this machine is written."""
    from editor.model_io import portable_name, portable_path

    out = Path(out)
    base = str(base_model or edit.model.get("source") or "")
    record = dict(edit.decomposition) if edit.decomposition else None
    if record and record.get("path") and Path(record["path"]).is_absolute():
        record["path"] = portable_path(Path(record["path"]), out)
    return dataclasses.replace(edit, model={**edit.model, "source": portable_name(base, out) if base else base}, decomposition=record)


def save(
    edit: Edit,
    model,
    tokenizer,
    out: str | Path,
    *,
    base_model: str | None = None,
    force: bool = False,
    decomposition: Any = None,
    forget: TextDataset | None = None,
) -> Path:
    """Write what `editor forget --out` writes: the edited model + tokenizer, `adapter/` (the exact PEFT LoRA of the
    edit), `edit.json` and the model cards (`README.md`, `adapter/README.md`), atomically; returns `out`.

    `model` is the unedited model; it is left unedited. `base_model` names the original model in the manifest,
    the cards and the adapter's config: a Hub id or a shipped name as is, a local folder by its path relative to
    each file (default: the edit's recorded model). `force` replaces only a folder an earlier editor run wrote.
    With the `decomposition` and the `forget` data the edit was made from, the changed components' pages
    (`editor.component_pages`) go into `out/components/` and the model card links them, as `editor forget` does.
    """
    from editor.export import export_edit
    from editor.model_io import portable_name

    out = Path(out)
    base = str(base_model or edit.model.get("source") or _model_name(model))
    adapter_base = portable_name(base, out / "adapter") if base else base
    pages = None
    if decomposition is not None and forget is not None and edit.components:
        from editor.component_pages import edit_pages

        pages = edit_pages(decomposition, tokenizer, edit.manifest(), forget.texts, forget.source)
    return export_edit(out, model, tokenizer, as_saved(edit, out, base), base_name_or_path=adapter_base, force=force, pages=pages)


def load_edit(out: str | Path) -> dict[str, Any]:
    """The `edit.json` record of a saved edit (what changed, why, how it was measured)."""
    from editor.model_io import read_edit_record

    return read_edit_record(out)


def evaluate(
    model,
    tokenizer,
    *,
    forget: Data | None = None,
    retain: Data | None = None,
    text_field: str = "text",
    settings=None,
    plain_model=None,
    scorer=None,
    prompts: str | Path | list[dict] | None = None,
    oracle=None,
    facts: str | Path | None = None,
    relearn_sets: tuple[Data, Data] | None = None,
    workdir: str | Path | None = None,
    status: Callable[[str], None] | None = None,
    **options: Any,
) -> dict:
    """`editor eval` on a model in memory: lm-eval tasks, forget/retain NLL, and optionally toxicity and robustness.

    Args:
        forget, retain: default, the held-out toxic and benign tweets.
        settings: an `evals.suite.SuiteSettings`; or give its fields as keywords (`tasks=("editor_forget",)`,
            `limit=50`, `toxicity=True`, `robustness=True`, ...).
        plain_model: the model for NLL, sampling and attacks when `model` is a PeftModel (default `model`).
        scorer, prompts: for toxicity (default: the best available scorer; the shipped prompts, or a prompt file:
            JSONL with a `prompt` field or one prompt per line).
        oracle: a model that never learned the forget set, attacked for reference (and the reference of facts'
            forget quality): a name, or (model, tokenizer, name).
        facts: an `editor target facts` folder (e.g. `editor.target_data.FACTS`): attribute accuracy per split
            on held-out paraphrases, and forget quality against `oracle`.
        relearn_sets: (texts the relearning attack fine-tunes on, texts it is measured on); default: a seeded split
            of `forget` (tiny-facts: `TargetData.relearn_attack`, `relearn_heldout`).
    Returns the report dict (`editor eval --json`).
    """
    import tempfile

    from editor.paths import HELDOUT, PROMPTS, SCORER
    from editor.target_data import eval_data
    from evals.harness import TaskError
    from evals.suite import SuiteSettings, run_suite

    if settings is None:
        from editor.recipe import validate

        def name_of(loc: tuple[str, ...]) -> str | None:
            return f"{loc[0]}={options[loc[0]]!r}" if loc and loc[0] in options else None

        settings = validate(SuiteSettings, options, "evaluate() settings", name_of)
    elif options:
        raise EditorError(f"pass either settings= or keyword options, not both ({', '.join(options)})")
    forget_data = load_data(forget if forget is not None else HELDOUT["toxic"], text_field)
    retain_data = load_data(retain if retain is not None else HELDOUT["benign"], text_field)
    data = eval_data(forget_data, retain_data)
    if facts is not None:
        from editor.target_data import check_facts_folder

        data.facts = check_facts_folder(Path(facts))
        data.sources["facts"] = str(facts)
    if relearn_sets is not None:
        attack, measured = (load_data(d, text_field) for d in relearn_sets)
        data.attack, data.attack_measured = attack.texts, measured.texts
        data.sources |= {"relearn_attack": attack.source, "relearn_measured": measured.source}
    elif settings.robustness and len(data.forget) <= settings.relearn.docs:
        raise EditorError(f"the forget set has {len(data.forget)} documents; the relearning attack needs more than --relearn-examples {settings.relearn.docs}")
    prompt_rows = prompts if isinstance(prompts, list) else None
    if settings.toxicity:
        from evals.scorer import load_scorer
        from evals.toxicity import read_prompts

        if scorer is None:
            scorer = load_scorer("auto", project_dir=SCORER)
        if prompts is None or isinstance(prompts, (str, Path)):
            path = Path(prompts if prompts is not None else PROMPTS)
            if not path.is_file():
                raise EditorError(f"--prompts {path}: no such file")
            try:
                prompt_rows = read_prompts(path)
            except ValueError as e:
                raise EditorError(str(e)) from None
            data.sources["prompts"] = str(path)
    if isinstance(oracle, str):
        oracle_model, oracle_tok = load_model(oracle)
        oracle = (oracle_model, oracle_tok, oracle)
    try:
        with tempfile.TemporaryDirectory(prefix="editor-eval-", dir=workdir) as tmp:
            return run_suite(
                model,
                tokenizer,
                data,
                settings,
                workdir=tmp,
                plain_model=plain_model,
                scorer=scorer,
                prompts=prompt_rows,
                oracle=oracle,
                status=status or (lambda _: None),
            )
    except (TaskError, ValueError) as e:
        raise EditorError(str(e)) from None


def decompose(
    model,
    tokenizer,
    data: Data | None = None,
    *,
    out: str | Path,
    recipe="tiny-toxic",
    overrides: Sequence[str] = (),
    resume: bool = False,
    device: str = "cpu",
    log: str | None = None,
    text_field: str = "text",
    source: str | None = None,
    dist=None,
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
    on_eval: Callable[[dict], None] | None = None,
) -> Path:
    """Train a VPD decomposition of `model` on `data` (default: the shipped training text) into `out`; returns `out`.

    `recipe` is a recipe name under recipes/decompose/, a YAML path, or a `decompose.config.DecomposeConfig`;
    `overrides` are `key=value` items (`--set`). `out/metrics.jsonl` and `out/metrics.png` hold the curves;
    `log="tensorboard"` also writes TensorBoard event files to `out/tensorboard/`. Load the result with
    `load_decomposition(model, out)`.
    """
    from decompose.config import DecomposeConfig
    from decompose.data import token_stream
    from decompose.run import run_decomposition
    from editor.paths import TRAIN
    from editor.recipe import load_recipe

    cfg = recipe if isinstance(recipe, DecomposeConfig) else load_recipe(DecomposeConfig, str(recipe), "decompose", list(overrides))
    if isinstance(recipe, DecomposeConfig) and overrides:
        raise EditorError("overrides apply to a recipe name or file, not to a DecomposeConfig (use cfg.model_copy(update=...))")
    texts = load_data(data if data is not None else [Path(p) for p in TRAIN.values()], text_field)
    stream = token_stream(tokenizer, texts.texts)
    if stream.numel() <= cfg.seq_len:
        raise EditorError(f"the data holds {stream.numel()} tokens, fewer than one sequence of {cfg.seq_len}")
    description = {"sources": texts.source, "documents": len(texts), "tokens": int(stream.numel())}
    return run_decomposition(
        model,
        stream,
        cfg,
        Path(out),
        resume=resume,
        model_source=source if source is not None else _model_name(model),
        data_description=description,
        device=device,
        dist=dist,
        log=log,
        on_step=on_step,
        on_eval=on_eval,
    )
