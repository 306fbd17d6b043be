"""`editor components`: the components most active on a dataset. Parse, call `editor.explain.top_components`, render."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from editor.cli.common import DecompOpt, ForceOpt, JsonOpt, ModelOpt, TextFieldOpt, check_model_inputs, emit_json, user_errors
from editor.console import console, result_table


@user_errors
def components(
    dataset: Annotated[
        list[str],
        typer.Option("--dataset", metavar="DATA", help="Data to profile: JSONL, text, Parquet or CSV file, save_to_disk folder or dataset id (repeatable)."),
    ],
    against: Annotated[
        list[str] | None,
        typer.Option(
            metavar="DATA",
            help="Other data (repeatable): list the components most specific to --dataset instead, used there more than here (as `editor forget` ranks them).",
        ),
    ] = None,
    model: ModelOpt = None,
    decomposition: DecompOpt = None,
    top: Annotated[int, typer.Option(min=1, help="Components to list.")] = 20,
    docs: Annotated[int, typer.Option(min=1, help="Documents sampled from the dataset.")] = 1000,
    text_field: TextFieldOpt = "text",
    html: Annotated[Path | None, typer.Option(help="Also write browsable pages here: index.html and one page per component with its top contexts.")] = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """The components most active on a dataset: matrix, mean CI, firing density, tokens they fire on and promote.

    Examples:

    \b
      editor components --dataset toxic.jsonl --top 10
      editor components --dataset toxic.jsonl --top 50 --html runs/components
      editor components --model tiny-facts --dataset person.jsonl --against examples/data/facts/retain.jsonl    # what holds one person's facts
    """
    from editor.model_io import decomposition_dir
    from lmkit.texts import load_many

    data = load_many(dataset, text_field)
    other = load_many(against, text_field) if against else None
    check_model_inputs(model, decomposition)
    dec_dir = decomposition_dir(model, decomposition)
    if html is not None:
        from lmkit.files import check_replaceable

        check_replaceable(html, force, "--html")

    from editor.explain import top_components
    from editor.model_io import load_decomposition_for, load_model

    lm, tok = load_model(model)
    dec = load_decomposition_for(lm, model, dec_dir)
    rows, tokens, truncated = top_components(dec, tok, data.texts, top, docs, against=other.texts if other else None)
    if truncated:
        console.print(f"[yellow]warning:[/] {truncated} documents were truncated to the context length", highlight=False)
    if html is not None:
        from editor.component_pages import contexts_for, write_pages
        from lmkit.files import atomic_dir

        contexts = contexts_for(dec, tok, data.texts, rows, docs)
        with atomic_dir(html, "pages", force=force, option="--html") as tmp:
            write_pages(tmp, rows, contexts, tok, data.source, tokens)
        console.print(f"pages: {html / 'index.html'}", highlight=False)
    if as_json:
        emit_json(
            {"dataset": data.source, "tokens": tokens, "components": rows}
            | ({"html": str(html)} if html else {})
            | ({"against": other.source} if other else {})
        )
        return
    against_cols = ["mean CI there", "specificity"] if other else []
    cells = [
        [
            r["module"],
            str(r["index"]),
            f"{r['mean_ci']:.3f}",
            *([f"{r['against_mean_ci']:.3f}", f"{r['specificity']:.3g}"] if other else []),
            f"{r['density']:.3f}",
            " ".join(map(repr, r["fires_on"][:5])),
            " ".join(map(repr, r["promotes"][:5])),
        ]
        for r in rows
    ]
    title = f"top {len(rows)} components on {data.source} ({tokens:,} tokens)" + (f", most specific against {other.source}" if other else "")
    result_table(title, ["matrix", "c", "mean CI", *against_cols, "density", "fires on", "promotes"], cells)
