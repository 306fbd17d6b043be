"""`editor forget --method <baseline>`: run a baseline, apply its edit, export it the way VPD edits are exported.

The output directory has the same layout as a VPD edit: the edited model and tokenizer
(`save_pretrained`), `adapter/` (a PEFT LoRA adapter that turns the original into the edited model,
exact: full-rank updates are exported at their numerical rank), `edit.json` (method, settings, data
hashes, metrics before and after, the training log) and a model card `README.md`.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import torch

from decompose.config_base import BaseConfig
from decompose.targets import fingerprint
from editor import __version__
from editor.apply import apply_delta
from editor.console import before_after_table, console, progress
from editor.errors import EditorError
from editor.forget import texts_sha256
from editor.manifest import metrics_rows
from editor.methods import get_baseline
from editor.methods.base import Baseline, Factors, factor_delta, target_matrices
from editor.recipe import parse_override, validate
from evals.nll import mean_nll

FORMAT = "editor-edit/1"
EVAL_DOCS = 1000  # documents per side for the before/after NLL on the data given (as VPD's report)


def parse_sets(items: list[str] | None) -> dict:
    """`--set key=value` items (values parsed as YAML) → a flat dict; dotted keys are not method settings."""
    out = {}
    for item in items or []:
        keys, value = parse_override(item)
        if len(keys) != 1:
            raise EditorError(f"--set {item}: method settings are flat (key=value), not sections")
        out[keys[0]] = value
    return out


def baseline_settings(baseline: Baseline, strength: float | None, sets: list[str] | dict | None) -> BaseConfig:
    """The baseline's settings from its defaults, `--set` items and `--strength` (which sets its strength field)."""
    data = dict(sets) if isinstance(sets, dict) else parse_sets(sets)
    if strength is not None:
        if baseline.strength in data:
            raise EditorError(f"--strength sets '{baseline.strength}' for {baseline.name}; do not also --set it")
        data[baseline.strength] = strength
    return validate(baseline.settings, data, f"settings for --method {baseline.name}")


def sample(texts: list[str], n: int, seed: int) -> list[str]:
    return texts if len(texts) <= n else random.Random(seed).sample(texts, n)


def nll_metrics(model, tokenizer, forget: list[str], retain: list[str]) -> dict[str, float]:
    return {"forget_nll": mean_nll(model, tokenizer, forget).mean, "retain_nll": mean_nll(model, tokenizer, retain).mean}


def baseline_manifest(
    baseline: Baseline,
    settings: BaseConfig,
    factors: Factors,
    source: str,
    fingerprints: tuple[str, str],
    data: dict,
    metrics: dict,
    log: list[dict],
    seconds: float,
    warnings: list[str],
) -> dict:
    import transformers

    return {
        "format": FORMAT,
        "method": baseline.name,
        "method_summary": baseline.summary,
        "model": {"source": source, "fingerprint_before": fingerprints[0], "fingerprint_after": fingerprints[1]},
        "data": data,
        "settings": settings.model_dump(mode="json"),
        "strength": {"field": baseline.strength, "value": getattr(settings, baseline.strength)},
        "changed_modules": {
            n: {"rank": int(a.shape[0]), "delta_frobenius": float((b @ a).norm())} for n, (a, b) in sorted(factors.items())
        },
        "metrics": metrics,
        "training": log,
        "warnings": warnings,
        "seconds": round(seconds, 2),
        "versions": {"editor": __version__, "torch": torch.__version__, "transformers": transformers.__version__},
    }


def baseline_card(manifest: dict) -> str:
    m = manifest["metrics"]
    rows = metrics_rows(m)
    changed = "\n".join(f"| `{n}` | {c['rank']} | {c['delta_frobenius']:.4g} |" for n, c in manifest["changed_modules"].items())
    settings = ", ".join(f"{k}={v}" for k, v in manifest["settings"].items())
    d = manifest["data"]
    return f"""---
tags: [editor, unlearning, baseline, {manifest['method']}]
base_model: {manifest['model']['source']}
---

# Edited model: {manifest['method']} baseline ({manifest['method_summary']})

This checkpoint is `{manifest['model']['source']}` after the `{manifest['method']}` unlearning baseline
of `editor forget --method {manifest['method']}` {manifest['versions']['editor']} ({settings}).
It loads with plain `AutoModelForCausalLM.from_pretrained`. `adapter/` holds the same weight change as a
PEFT LoRA adapter for the original model (at the change's numerical rank, so merging it reproduces this
checkpoint); `edit.json` records the settings, the data hashes and the training log.

Forget set: {d['forget']['documents']} documents from `{d['forget']['source']}`; retain set:
{d['retain']['documents']} documents from `{d['retain']['source']}`
{'(not used by this method)' if manifest['method'] in ('ga', 'task-vector') else ''}.

## Changed matrices (attention and MLP only; embeddings and norms are frozen)

| matrix | rank of ΔW | ‖ΔW‖_F |
|---|---|---|
{changed}

## Measured (mean NLL per token, nats; on the data used for the edit)

| | before | after | change |
|---|---|---|---|
{rows}

Held-out evaluations belong in `editor eval`; these figures are on the edit's own data.
"""


def forget_with_baseline(
    method: str,
    lm,
    tokenizer,
    source: str,
    forget_data,
    retain_data,
    settings: BaseConfig,
    status=lambda message: None,
    on_step=None,
) -> tuple[dict, Factors]:
    """Run `method`, apply its edit to `lm` in place, and return (manifest, LoRA factors of the edit)."""
    start = time.perf_counter()
    baseline = get_baseline(method)
    forget, retain = forget_data.texts, retain_data.texts
    warnings = []
    if set(forget) == set(retain):
        warnings.append("the retain set equals the forget set")
    targets = target_matrices(lm)
    eval_forget, eval_retain = sample(forget, EVAL_DOCS, 0), sample(retain, EVAL_DOCS, 1)
    status("measuring NLL before")
    before = nll_metrics(lm, tokenizer, eval_forget, eval_retain)
    fingerprint_before = fingerprint(list(targets.values()))
    strength = float(getattr(settings, baseline.strength))
    run = baseline.run(lm, tokenizer, forget, retain, settings, [strength], status, on_step)
    if strength not in run.edits:
        last = run.log[-1]["step"] if run.log else 0
        raise EditorError(
            f"{method} diverged (non-finite loss or weights) after {last} steps, before reaching "
            f"{baseline.strength}={strength:g}; lower the learning rate (--set lr=...) or the strength"
        )
    factors = run.edits[strength]
    apply_delta(targets, factor_delta(factors))
    status("measuring NLL after")
    after = nll_metrics(lm, tokenizer, eval_forget, eval_retain)
    data = {
        "forget": {"source": forget_data.source, "documents": len(forget), "sha256": texts_sha256(forget)},
        "retain": {"source": retain_data.source, "documents": len(retain), "sha256": texts_sha256(retain), "evaluated": len(eval_retain)},
    }
    manifest = baseline_manifest(
        baseline, settings, factors, source, (fingerprint_before, fingerprint(list(targets.values()))), data,
        {"before": before, "after": after}, run.log, time.perf_counter() - start, warnings,
    )
    return manifest, factors


def forget_cli(
    method: str,
    *,
    dataset: list[str],
    retain: list[str] | None,
    model: str | None,
    out: Path | None,
    strength: float | None,
    sets: list[str] | None,
    dry_run: bool,
    force: bool,
    text_field: str,
    vpd_options: dict[str, object],
) -> tuple[dict, Path | None]:
    """The `editor forget --method <baseline>` command body: returns (manifest, output dir or None on a dry run)."""
    from editor.data import load_many
    from editor.export import export_edit
    from editor.model_io import load_model, resolve_model
    from editor.paths import RETAIN_DEFAULT

    start = time.perf_counter()
    baseline = get_baseline(method)
    given = [opt for opt, value in vpd_options.items() if value is not None]
    if given:
        raise EditorError(f"{', '.join(given)} only apply to --method vpd; {method} takes --strength and --set")
    settings = baseline_settings(baseline, strength, sets)
    dest = out or Path("runs") / f"forget-{Path(model or 'tiny-toxic').name}-{method}"
    if dest.exists() and not force and not dry_run:
        raise EditorError(f"{dest} already exists; pass --force to replace it")
    forget_data = load_many(dataset, text_field)
    retain_data = load_many(retain or [str(p) for p in RETAIN_DEFAULT], text_field)
    lm, tok = load_model(model)
    source = resolve_model(model)
    with progress() as bar:
        task = bar.add_task(method, total=None, status="")

        def status(message: str) -> None:
            bar.update(task, status=message)

        def on_step(step: int, total: int, loss: float) -> None:
            bar.update(task, completed=step, total=total, status=f"loss {loss:.4f}")

        manifest, factors = forget_with_baseline(method, lm, tok, source, forget_data, retain_data, settings, status, on_step)
    for w in manifest["warnings"]:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    if not dry_run:
        export_edit(dest, lm, tok, None, None, manifest, baseline_card(manifest), force=force, base_name_or_path=source, factors=factors)
    manifest["seconds_total"] = round(time.perf_counter() - start, 2)
    manifest["out"] = None if dry_run else str(dest)
    return manifest, None if dry_run else dest


def render(manifest: dict) -> None:
    changed = manifest["changed_modules"]
    s = manifest["strength"]
    console.print(
        f"{manifest['method']} ({manifest['method_summary']}), {s['field']}={s['value']}: changed {len(changed)} matrices, "
        f"total rank {sum(c['rank'] for c in changed.values())}",
        highlight=False,
    )
    console.print(before_after_table(manifest["metrics"]))
    console.print(f"done in {manifest['seconds']:.1f}s", highlight=False)
