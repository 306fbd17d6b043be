"""`editor forget`: run a method on a forget set, export the edit. Parse, call `editor.forget.forget`, render."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from editor.cli.common import DecompOpt, JsonOpt, ModelOpt, TextFieldOpt, check_model_inputs, emit_json, user_errors
from editor.console import before_after_table, console, progress, result_table


@user_errors
def forget(
    dataset: Annotated[
        list[str],
        typer.Option("--dataset", metavar="DATA", help="What to forget: JSONL, text, Parquet or CSV file, save_to_disk folder or dataset id (repeatable)."),
    ],
    retain: Annotated[
        list[str] | None,
        typer.Option(
            metavar="DATA",
            help="What to keep, in the same formats (repeatable). Default: the model's target's training data (WikiText + benign tweets; tiny-facts: WikiText + the retained people).",
        ),
    ] = None,
    model: ModelOpt = None,
    decomposition: DecompOpt = None,
    out: Annotated[Path | None, typer.Option(help="Output directory for the edited model (default: runs/forget-<model>-<method>).")] = None,
    method: Annotated[
        str,
        typer.Option(
            help="vpd (default: the vpd-write edit kind), another VPD edit kind (vpd-scale, vpd-project, vpd-remove), or a baseline (ga, graddiff, npo, task-vector)."
        ),
    ] = "vpd",
    strength: Annotated[
        float | None,
        typer.Option(help="The method's main knob: the VPD kinds' retain budget max_retain_kl (nats/token), ga/graddiff/npo steps, task-vector alpha."),
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Method setting key=value (repeatable), e.g. components=100, steps=300 (vpd-write) or max_components=3 (vpd-remove).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Select and report; write nothing.")] = False,
    force: Annotated[bool, typer.Option(help="Replace an output directory that an earlier editor run wrote.")] = False,
    text_field: TextFieldOpt = "text",
    as_json: JsonOpt = False,
) -> None:
    """Find what a forget set needs and retained data does not, change it for good, and export the edited model.

    Examples:

    \b
      editor forget --dataset toxic.jsonl --out runs/detoxed
      editor forget --dataset toxic.jsonl --strength 0.15 --out runs/more    # a larger retain budget (nats of KL)
      editor forget --method vpd-remove --set max_components=3 --dataset toxic.jsonl --out runs/rm3    # remove 3 components
      editor forget --method npo --strength 40 --dataset toxic.jsonl --out runs/npo    # baselines (same export)
    """
    import time

    from editor.model_io import default_data, resolve_model, weights_bytes
    from lmkit.files import check_replaceable, check_writable_parent
    from lmkit.texts import load_many

    start = time.perf_counter()
    # Everything the user typed is checked before torch and transformers load (they take seconds).
    dest = out or Path("runs") / f"forget-{Path(model or 'tiny-toxic').name}-{method}"
    forget_data = load_many(dataset, text_field)
    retain_data = load_many(retain or [str(p) for p in default_data(model).retain], text_field)
    check_model_inputs(model, decomposition)
    if not dry_run:
        check_replaceable(dest, force)
        check_writable_parent(dest, need_bytes=weights_bytes(resolve_model(model)))

    from editor import api
    from editor.forget import method_settings
    from editor.methods import get_method
    from editor.methods.base import Progress
    from editor.model_io import decomposition_dir, load_decomposition_for

    m = get_method(method)
    settings = method_settings(m, strength, sets)
    dec_dir = decomposition_dir(model, decomposition) if m.needs_decomposition else None
    lm, tok = api.load_model(model)
    dec = load_decomposition_for(lm, model, dec_dir) if m.needs_decomposition else None
    if decomposition is not None and not m.needs_decomposition:
        console.print(f"[yellow]warning:[/] --method {m.name} does not use a decomposition; --decomposition is ignored", highlight=False)
    with progress() as bar:
        task = bar.add_task(m.name, total=None, status="")

        def step(done: int, total: int, note: str = "") -> None:
            if note:
                bar.update(task, completed=done, total=total, status=note)
            else:
                bar.update(task, completed=done, total=total)

        report = Progress(status=lambda message: bar.update(task, status=message), step=step)
        edit = api.forget(lm, tok, forget_data, retain_data, method=m.name, settings=settings, decomposition=dec, progress=report)
    for w in edit.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    if not dry_run:
        api.save(edit, lm, tok, dest, force=force, decomposition=dec, forget=forget_data)
    manifest = api.as_saved(edit, dest).manifest()  # what edit.json holds, also for a dry run
    manifest["seconds_total"] = round(time.perf_counter() - start, 2)
    manifest["out"] = None if dry_run else str(dest)
    if as_json:
        emit_json(manifest)
        return
    render(manifest)
    if not dry_run:
        typer.echo(str(dest))


CURVE_AXES = {
    "removed": "the ranking's first k components removed",
    "steps": "snapshots of the learned change after k steps",
    "projected": "the ranking's first k components write-projected",
}


def render(manifest: dict) -> None:
    """The edit on stdout: what changed, the before/after table, and the method's own log."""
    s = manifest["strength"]
    typer.echo(f"{manifest['method']}: {manifest['summary']} ({s['field']}={s['value']}), in {manifest['seconds']:.1f}s")
    if manifest["components"]:
        rows = [
            [c["module"], str(c["index"]), c["change"], " ".join(map(repr, c["fires_on"][:5])), " ".join(map(repr, c["promotes"][:5]))]
            for c in manifest["components"]
        ]
        result_table("changed components", ["matrix", "c", "change", "fires on", "promotes"], rows)
    else:
        result_table(
            "changed matrices", ["matrix", "rank", "‖ΔW‖"], [[n, str(c["rank"]), f"{c['delta_frobenius']:.4g}"] for n, c in manifest["changed_modules"].items()]
        )
    result_table(*before_after_table(manifest["metrics"]))
    search = manifest.get("search")
    if search:
        axis = search.get("axis", "removed")
        rows = []
        for p in [search["base"], *search["curve"]]:
            mark = "selected" if p["at"] == search["final"]["at"] and p["at"] else ("over budget" if not p["within_budget"] else "")
            rows.append([str(p["at"]), f"{p['forget_loss']:.4f}", f"{p['forget_ce']:.4f}", f"{p['retain_kl']:.5f}", mark])
        result_table(
            f"trade-off explored ({CURVE_AXES.get(axis, axis)}; the forget loss counts forget-specific tokens)",
            [axis, "forget loss", "forget CE", "retain KL", ""],
            rows,
        )
        typer.echo(f"{manifest['candidates_ranked']} candidates, {len(search['curve'])} edits checked on the real weights")
        if manifest.get("lowers"):
            typer.echo("the edit lowers most, on forget data: " + " ".join(map(repr, manifest["lowers"])))
