"""`editor graph`: the attribution graph of one prompt. Parse, call `editor.graph_report.build_graph`, write, render."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from editor.cli.common import DecompOpt, ForceOpt, JsonOpt, ModelOpt, check_model_inputs, emit_json, user_errors
from editor.console import console, result_table


@user_errors
def graph(
    prompt: Annotated[str, typer.Option(help="The prompt to explain.")],
    out: Annotated[Path, typer.Option(help="Output folder: graph.html, graph.png, graph.json.")] = Path("runs/graph"),
    model: ModelOpt = None,
    decomposition: DecompOpt = None,
    edit: Annotated[Path | None, typer.Option(help="An `editor forget` output: the graphs before and after that edit.")] = None,
    target_token: Annotated[str | None, typer.Option(help="The token whose logit is explained (one token; default: the top prediction).")] = None,
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="A component is a node where its causal importance exceeds this.")] = 0.1,
    node_fraction: Annotated[float, typer.Option(min=0.0, max=1.0, help="Keep the nodes holding this share of the influence on the target.")] = 0.8,
    edge_fraction: Annotated[float, typer.Option(min=0.0, max=1.0, help="Keep the edges holding this share of the kept nodes' attribution.")] = 0.95,
    max_nodes: Annotated[int, typer.Option(min=1, help="At most this many component nodes.")] = 200,
    pgd_steps: Annotated[int, typer.Option(min=0, help="Steps of the adversarial check on the dropped nodes.")] = 20,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """The attribution graph of a prompt: components that fire, how they feed each other and the target, and whether they suffice.

    Examples:

    \b
      editor graph --prompt "@user you are a" --out runs/graph
      editor graph --prompt "@user you are a" --edit runs/demo --out runs/graph-demo
    """
    import json

    from editor.errors import EditorError
    from editor.model_io import decomposition_dir, read_edit_record
    from lmkit.files import check_replaceable

    if not prompt.strip():
        raise EditorError("--prompt is empty")
    check_model_inputs(model, decomposition)
    dec_dir = decomposition_dir(model, decomposition)
    if edit is not None:
        read_edit_record(edit, "--edit")
    check_replaceable(out, force)

    from editor.graph_html import html_page
    from editor.graph_png import draw_png
    from editor.graph_report import GraphSettings, build_graph
    from editor.model_io import load_decomposition_for, load_model
    from lmkit.files import atomic_dir

    settings = GraphSettings(threshold, node_fraction, edge_fraction, max_nodes, pgd_steps)
    lm, tok = load_model(model)
    dec = load_decomposition_for(lm, model, dec_dir)
    with console.status("attributing"):
        result = build_graph(dec, tok, prompt, target_token, settings, edit)
    with atomic_dir(out, "graph", force=force) as tmp:
        (tmp / "graph.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
        (tmp / "graph.html").write_text(html_page(result), encoding="utf-8")
        draw_png(result, tmp / "graph.png")
    if as_json:
        emit_json({k: v for k, v in result.items() if k != "graphs"} | {"out": str(out), "graphs": [summary(g) for g in result["graphs"]]})
        return
    render(result)
    typer.echo(str(out))


def summary(g: dict) -> dict:
    return {"title": g["title"], "target": g["target"], "counts": g["counts"], "faithfulness": g["faithfulness"]}


def render(result: dict) -> None:
    for g in result["graphs"]:
        f, t, c = g["faithfulness"], g["target"], g["counts"]
        rows = [
            [name, f"{f[k]['prob']:.4f}", f"{f[k]['logit']:.3f}", str(f[k]["rank"]), repr(f[k]["top"])]
            for k, name in [
                ("full", "full model"),
                ("all_ci", "all components at CI"),
                ("graph", "graph nodes only (CI)"),
                ("pgd", f"graph + PGD ({f['pgd_steps']} steps)"),
                ("pgd_all", "all nodes + PGD"),
            ]
        ]
        result_table(
            f"{g['title']}: target {t['token']!r}, {c['nodes']} nodes / {c['edges']} edges kept of {c['nodes_above_threshold']} / {c['edges_nonzero']}",
            ["condition", "p(target)", "logit", "rank", "top"],
            rows,
        )
        if "edit" in result:
            typer.echo(f"edited components: {c['edited_above_threshold']} above the threshold, {c['edited_kept']} in the graph")
        typer.echo(f["verdict"])
        typer.echo("k most influential nodes only: " + ", ".join(f"{c['nodes']}: p={c['prob']:.3f}" for c in f["curve"]))
    if "edit" in result:
        e = result["edit"]
        typer.echo(f"edit {e['summary']}: p({result['graphs'][0]['target']['token']!r}) {e['target_prob_before']:.4f} -> {e['target_prob_after']:.4f}")
