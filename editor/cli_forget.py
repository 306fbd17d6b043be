"""`editor forget` and `editor components`: find what a dataset needs, and remove it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from editor.cli_common import JsonOpt, TextFieldOpt, emit_json, user_errors
from editor.console import before_after_table, console, progress

ModelOpt = Annotated[str | None, typer.Option(help="Model name, local directory or hub id (default: tiny-toxic).")]
DecompOpt = Annotated[Path | None, typer.Option("--decomposition", help="Decomposition directory (default: the shipped one for the default model).")]


def _load(model: str | None, decomposition: Path | None):
    from decompose.io import load_decomposition
    from editor.errors import EditorError
    from editor.model_io import DEFAULT_MODEL, load_model, resolve_model
    from editor.paths import DECOMPOSITIONS

    lm, tok = load_model(model)
    if decomposition is None:
        decomposition = DECOMPOSITIONS / (model or DEFAULT_MODEL)
        if not decomposition.is_dir():
            raise EditorError(f"no shipped decomposition for '{model}': pass --decomposition DIR (see `editor decompose`)")
    return lm, tok, load_decomposition(lm, decomposition), resolve_model(model)


@user_errors
def forget(
    dataset: Annotated[list[str], typer.Option("--dataset", help="What to forget: JSONL, text file or dataset id (repeatable).")],
    retain: Annotated[list[str] | None, typer.Option(help="What to keep (repeatable). Default: the shipped WikiText + benign tweets.")] = None,
    model: ModelOpt = None,
    decomposition: DecompOpt = None,
    out: Annotated[Path | None, typer.Option(help="Output directory for the edited model (default: runs/forget-<model>).")] = None,
    max_retain_kl: Annotated[float | None, typer.Option(help="Retain budget: mean KL per retained token (nats).")] = None,
    max_components: Annotated[int | None, typer.Option(help="Remove the top K verified components instead of using a budget.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Select and report; write nothing.")] = False,
    force: Annotated[bool, typer.Option(help="Replace an existing output directory.")] = False,
    text_field: TextFieldOpt = "text",
    as_json: JsonOpt = False,
    method: Annotated[str, typer.Option(help="vpd (default), or a baseline: ga, graddiff, npo, task-vector.")] = "vpd",
    strength: Annotated[float | None, typer.Option(help="The method's main knob: vpd max_retain_kl, ga/graddiff/npo steps, task-vector alpha.")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="Method setting key=value (repeatable), e.g. lr=1e-4 or search_docs=64.")] = None,
) -> None:
    """Remove the components a forget set needs and retained data does not, and export the edited model.

    Example: editor forget --dataset toxic.jsonl --out runs/detoxed
    Baselines (same export): editor forget --method npo --strength 40 --dataset toxic.jsonl --out runs/npo
    """
    import time

    from editor.data import load_many
    from editor.errors import EditorError
    from editor.export import export_edit
    from editor.forget import ForgetSettings, plan_forget
    from editor.manifest import edit_manifest, model_card
    from editor.paths import RETAIN_DEFAULT

    start = time.perf_counter()
    if method != "vpd":  # a baseline (editor/methods): same data options and export, its own settings
        from editor.methods.run import forget_cli, render

        vpd_only = {"--decomposition": decomposition, "--max-retain-kl": max_retain_kl, "--max-components": max_components}
        manifest, written = forget_cli(method, dataset=dataset, retain=retain, model=model, out=out, strength=strength, sets=sets,
                                       dry_run=dry_run, force=force, text_field=text_field, vpd_options=vpd_only)
        if as_json:
            emit_json(manifest)
            return
        render(manifest)
        if written:
            typer.echo(str(written))
        return
    if strength is not None:  # for VPD the strength is the retain budget
        if max_retain_kl is not None:
            raise EditorError("--strength is --max-retain-kl for VPD; pass one of them")
        max_retain_kl = strength
    if max_retain_kl is not None and max_components is not None:
        raise EditorError("pass either --max-retain-kl or --max-components, not both")
    dest = out or Path("runs") / f"forget-{Path(model or 'tiny-toxic').name}"
    if dest.exists() and not force and not dry_run:
        raise EditorError(f"{dest} already exists; pass --force to replace it")
    overrides = {}
    if max_components is not None:
        overrides = {"max_components": max_components, "max_retain_kl": None}
    elif max_retain_kl is not None:
        overrides = {"max_retain_kl": max_retain_kl}
    from editor.methods.run import parse_sets
    from editor.recipe import validate

    settings = validate(ForgetSettings, {**parse_sets(sets), **overrides}, "forget settings (--set)")
    forget_data = load_many(dataset, text_field)
    retain_data = load_many(retain or [str(p) for p in RETAIN_DEFAULT], text_field)
    lm, tok, dec, source = _load(model, decomposition)
    with progress() as bar:
        task = bar.add_task("forget", total=None, status="")

        def status(message: str) -> None:
            bar.update(task, status=message)

        def advance(completed: int, total: int) -> None:
            bar.update(task, completed=completed, total=total)

        plan = plan_forget(dec, tok, forget_data.texts, retain_data.texts, settings, status, advance)
    for w in plan.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    manifest = edit_manifest(plan, dec, settings, source, forget_data.source, retain_data.source)
    if not dry_run:
        export_edit(dest, lm, tok, dec.cm, plan.removed, manifest, model_card(manifest), force=force, base_name_or_path=source)
    manifest["seconds_total"] = round(time.perf_counter() - start, 2)
    manifest["out"] = None if dry_run else str(dest)
    if as_json:
        emit_json(manifest)
        return
    _render(manifest)
    if not dry_run:
        typer.echo(str(dest))


def _render(manifest: dict) -> None:
    per = Table(title=f"removed {len(manifest['removed'])} components of {manifest['candidates_ranked']} candidates")
    per.add_column("matrix")
    per.add_column("removed", justify="right")
    for name, n in manifest["removed_per_module"].items():
        per.add_row(name, str(n))
    console.print(per)
    console.print(before_after_table(manifest["metrics"]))
    search = manifest["search"]
    trade = Table(title="trade-off explored: the ranking's first k components removed (forget loss counts forget-specific tokens)")
    for col in ("removed", "forget loss", "forget CE", "retain KL", ""):
        trade.add_column(col, justify="right")
    for p in [search["base"], *search["curve"]]:
        mark = "selected" if p["removed"] == search["final"]["removed"] and p["removed"] else ("over budget" if not p["within_budget"] else "")
        trade.add_row(str(p["removed"]), f"{p['forget_loss']:.4f}", f"{p['forget_ce']:.4f}", f"{p['retain_kl']:.5f}", mark)
    console.print(trade)
    console.print(f"{manifest['candidates_ranked']} candidates ranked, {len(search['curve'])} removals checked, in {manifest['seconds']:.1f}s", highlight=False)


@user_errors
def components(
    dataset: Annotated[list[str], typer.Option("--dataset", help="Data to profile: JSONL, text file or dataset id (repeatable).")],
    model: ModelOpt = None,
    decomposition: DecompOpt = None,
    top: Annotated[int, typer.Option(help="Components to list.")] = 20,
    docs: Annotated[int, typer.Option(help="Documents sampled from the dataset.")] = 1000,
    text_field: TextFieldOpt = "text",
    as_json: JsonOpt = False,
) -> None:
    """The components most active on a dataset: matrix, mean CI, firing density, tokens they fire on and promote.

    Example: editor components --dataset toxic.jsonl --top 10
    """
    import random

    from decompose.data import document_batches
    from decompose.stats import component_stats
    from editor.apply import RemovedComponent
    from editor.data import load_many
    from editor.explain import firing_tokens, promoted_tokens
    from evals.nll import context_length

    data = load_many(dataset, text_field)
    lm, tok, dec, _ = _load(model, decomposition)
    texts = data.texts if len(data.texts) <= docs else random.Random(0).sample(data.texts, docs)
    batches, truncated = document_batches(tok, texts, context_length(lm), 64)
    stats = component_stats(dec.cm, dec.ci_fn, batches)
    ranked = sorted(((float(v[c]), n, c) for n, v in stats.mean_ci.items() for c in range(v.numel())), reverse=True)[:top]
    comps = [RemovedComponent(n, c) for _, n, c in ranked]
    explain_batches = batches[: max(1, 256 // 64)]
    fires, promotes = firing_tokens(dec.cm, dec.ci_fn, explain_batches, comps, tok), promoted_tokens(dec.cm, explain_batches, comps, tok)
    rows = [
        {"module": c.module, "index": c.index, "mean_ci": mu, "density": float(stats.density[c.module][c.index]), "fires_on": fires[c], "promotes": promotes[c]}
        for (mu, _, _), c in zip(ranked, comps)
    ]
    if truncated:
        console.print(f"[yellow]warning:[/] {truncated} documents were truncated to the context length", highlight=False)
    if as_json:
        emit_json({"dataset": data.source, "tokens": stats.tokens, "components": rows})
        return
    table = Table(title=f"top {top} components on {data.source} ({stats.tokens:,} tokens)")
    for col in ("matrix", "c", "mean CI", "density", "fires on", "promotes"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["module"], str(r["index"]), f"{r['mean_ci']:.3f}", f"{r['density']:.3f}", " ".join(map(repr, r["fires_on"][:5])), " ".join(map(repr, r["promotes"][:5])))
    console.print(table)
