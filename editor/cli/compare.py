"""`editor compare`: VPD against gradient ascent, GradDiff, NPO and task-vector negation on held-out data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from editor.cli.common import JsonOpt, TextFieldOpt, emit_json, user_errors
from editor.console import progress


@user_errors
def compare(
    model: Annotated[str | None, typer.Option(help="Model name, local directory or hub id (default: tiny-toxic).")] = None,
    oracle: Annotated[
        str | None,
        typer.Option(
            help="A model that never saw the forget data (default: the shipped oracle: tiny-clean for tiny-toxic, tiny-facts-retain for tiny-facts; 'none' for no oracle)."
        ),
    ] = None,
    decomposition: Annotated[Path | None, typer.Option("--decomposition", help="Decomposition for VPD (default: the shipped one for the model).")] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            metavar="DATA",
            help="What to forget (repeatable). Default: the model's target's forget set (examples/forget/toxic.jsonl; tiny-facts: facts.jsonl).",
        ),
    ] = None,
    retain: Annotated[
        list[str] | None,
        typer.Option(
            metavar="DATA",
            help="What to keep (repeatable). Default: the target's training data (WikiText + benign tweets; tiny-facts: WikiText + the retained people).",
        ),
    ] = None,
    heldout_forget: Annotated[
        list[str] | None,
        typer.Option(
            metavar="DATA",
            help="Held-out forget-like data to measure (repeatable). Default: held-out toxic tweets (tiny-facts: the forget people's held-out paraphrases).",
        ),
    ] = None,
    heldout_retain: Annotated[
        list[str] | None,
        typer.Option(
            metavar="DATA",
            help="Held-out retain sets, each measured on its own (repeatable). Default: held-out WikiText, benign tweets (tiny-facts: the retained people's paraphrases).",
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Output directory: compare.json, compare.md, pareto.png, relearn.png (facts targets: facts.png).")] = Path(
        "runs/compare"
    ),
    quick: Annotated[bool, typer.Option(help="Tiny sweeps and limits: a smoke run, not a result.")] = False,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set", metavar="KEY=VALUE", help="Setting key=value (repeatable): sweep.ga=\\[10,20], settings.npo.lr=1e-4, relearn.steps=0, max_damage=0.05."
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing output directory.")] = False,
    text_field: TextFieldOpt = "text",
    as_json: JsonOpt = False,
) -> None:
    """Run every method with the same data, sweep each one's strength, and write a table and plots.

    Examples:

    \b
      editor compare --out runs/compare        # tiny-toxic: 286 s on an idle 2-core machine (README)
      editor compare --set sweep.ga=\\[10,20,30] --set settings.npo.lr=1e-4 --set methods=\\[vpd,npo]
    """
    import time

    from editor.cli.common import check_model_inputs
    from editor.compare_data import load_compare_data
    from editor.errors import EditorError
    from editor.model_io import default_oracle, portable_name, resolve_model, shipped_name
    from editor.paths import DECOMPOSITIONS
    from lmkit.files import check_replaceable, check_writable_parent

    start = time.perf_counter()
    # The files and folders the user named are checked before torch loads (seconds); the settings after.
    check_replaceable(out, force)
    check_writable_parent(out)
    data = load_compare_data(model, dataset, retain, heldout_forget, heldout_retain, text_field)
    check_model_inputs(model, decomposition)
    for name in [oracle] if oracle and oracle.lower() != "none" else []:
        resolve_model(name, "--oracle")

    from editor.compare import markdown, resolve_settings, result_json, run_compare, write_report
    from editor.model_io import load_model

    settings = resolve_settings(overrides, quick)
    data = data.capped(settings.heldout_docs, settings.seed)
    if oracle is None:
        oracle = default_oracle(model)
    if oracle is not None and oracle.lower() == "none":
        oracle = None
    shipped = shipped_name(model)
    if decomposition is None and shipped and (DECOMPOSITIONS / shipped).is_dir():
        decomposition = DECOMPOSITIONS / shipped
    lm, tok = load_model(model)
    oracle_pair = None
    if oracle is not None:
        o_lm, o_tok = load_model(oracle)
        if o_tok.get_vocab() != tok.get_vocab():
            raise EditorError(f"the oracle '{oracle}' has a different tokenizer from the model: their NLLs per token do not compare")
        oracle_pair = (o_lm, o_tok)
    with progress() as bar:
        task = bar.add_task("compare", total=len(settings.methods) + 1, status="")
        result = run_compare(lm, tok, data, settings, decomposition, oracle_pair, lambda m: bar.update(task, status=m), lambda: bar.update(task, advance=1))
    report = result_json(result, settings, data, portable_name(model, out), oracle, time.perf_counter() - start)
    write_report(out, report, force)
    if as_json:
        emit_json(report)
        return
    typer.echo(markdown(report))
    typer.echo(str(out))
