"""`editor forget` as one library call: run a method, measure its edit before and after, return the `Edit`.

The model is left as it was (every measurement applies and reverts); making the edit for good is
`Edit.apply` (editor.apply) and writing it is `editor.export.export_edit`.
"""

from __future__ import annotations

import time
from typing import Any

from decompose.config_base import BaseConfig
from decompose.targets import fingerprint
from editor.edit import Edit
from editor.errors import EditorError
from editor.methods import get_method
from editor.methods.base import ForgetInputs, Method, Progress, target_matrices
from editor.paths import portable
from editor.recipe import parse_override, validate
from lmkit.files import texts_sha256
from lmkit.nll import mean_nll
from lmkit.texts import TextDataset, sample_texts

EVAL_DOCS = 256  # documents per side (sampled) for the before/after NLL on the data given: a check, not the benchmark


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """`--set key=value` items (values parsed as YAML) → a flat dict; dotted keys are not method settings."""
    out = {}
    for item in items or []:
        keys, value = parse_override(item)
        if len(keys) != 1:
            raise EditorError(f"--set {item}: method settings are flat (key=value), not sections")
        out[keys[0]] = value
    return out


def method_settings(method: Method, strength: float | None = None, sets: list[str] | dict | None = None) -> BaseConfig:
    """The method's settings: its defaults, then `--set` items, then `--strength` (which sets its strength field)."""
    data = dict(sets) if isinstance(sets, dict) else parse_sets(sets)
    if strength is not None:
        if method.strength in data:
            raise EditorError(f"--strength sets '{method.strength}' for {method.name}; do not also --set it")
        data[method.strength] = strength

    def name_of(loc: tuple[str, ...]) -> str | None:
        if loc and loc[0] == method.strength and strength is not None:
            return f"--strength {strength:g} ({method.strength})"
        return f"--set {loc[0]}={data[loc[0]]}" if loc and loc[0] in data else None

    return validate(method.settings, data, f"settings for --method {method.name}", name_of)


def nll_metrics(model, tokenizer, forget: list[str], retain: list[str]) -> dict[str, float]:
    return {"forget_nll": mean_nll(model, tokenizer, forget).mean, "retain_nll": mean_nll(model, tokenizer, retain).mean}


def data_record(forget: TextDataset, retain: TextDataset) -> dict[str, dict[str, Any]]:
    return {
        "forget": {"source": portable(forget.source), "documents": len(forget), "sha256": texts_sha256(forget.texts)},
        "retain": {"source": portable(retain.source), "documents": len(retain), "sha256": texts_sha256(retain.texts)},
    }


def _merge(into: dict, extra: dict) -> dict:
    for key, value in extra.items():
        into[key] = _merge(dict(into.get(key, {})), value) if isinstance(value, dict) else value
    return into


def forget(
    method: str,
    model,
    tokenizer,
    forget_data: TextDataset,
    retain_data: TextDataset,
    settings: BaseConfig,
    *,
    decomposition=None,
    source: str = "",
    progress: Progress = Progress(),
) -> Edit:
    """Run `method` with `settings` (see `method_settings`) and return its measured Edit; `model` is unchanged."""
    start = time.perf_counter()
    m = get_method(method)
    if m.needs_decomposition and decomposition is None:
        raise EditorError(f"--method {m.name} needs a decomposition of the model: pass --decomposition DIR (see `editor decompose`)")
    if not forget_data.texts:
        raise EditorError("the forget set is empty")
    inputs = ForgetInputs(model, tokenizer, forget_data.texts, retain_data.texts, decomposition)
    strength = getattr(settings, m.strength)
    eval_forget, eval_retain = sample_texts(forget_data.texts, EVAL_DOCS, 0), sample_texts(retain_data.texts, EVAL_DOCS, 1)
    progress.status("measuring NLL before")
    before = nll_metrics(model, tokenizer, eval_forget, eval_retain)
    fingerprint_before = fingerprint(list(target_matrices(model).values()))
    edits = m.run(inputs, settings, [strength], progress)
    if strength not in edits:
        last = edits and max(edits) or 0
        raise EditorError(
            f"{m.name} diverged (non-finite loss or weights) before reaching {m.strength}={strength:g} (last edit at {last}); "
            "lower the learning rate (--set lr=...) or the strength"
        )
    edit = edits[strength]
    progress.status("measuring NLL after")
    applied = edit.apply(model)
    try:
        after = nll_metrics(model, tokenizer, eval_forget, eval_retain)
        fingerprint_after = fingerprint(list(target_matrices(model).values()))
    finally:
        applied.revert()
    if set(forget_data.texts) == set(retain_data.texts) and not any("equals the forget set" in w for w in edit.warnings):
        edit.warnings.append("the retain set equals the forget set")
    edit.metrics = {"before": before, "after": after}
    edit.data = _merge(data_record(forget_data, retain_data), edit.data)
    edit.data["retain"]["evaluated"] = len(eval_retain)
    edit.model = {"source": source, "fingerprint_before": fingerprint_before, "fingerprint_after": fingerprint_after}
    edit.seconds = max(edit.seconds, time.perf_counter() - start)
    return edit
