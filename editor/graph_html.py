"""The graph as one self-contained HTML page: inline SVG drawn here, inline style and script, no network.

The SVG is complete without the script (nodes by row and position, edges coloured by sign, width by size);
the script only adds the interaction: hovering a node shows what it is (matrix, component, causal
importance, activation, influence, where it fires on the prompt and what it promotes), clicking a node
highlights its edges, clicking the background clears that.
"""

from __future__ import annotations

import json
from html import escape

COL, ROW, PAD_L, PAD_B, PAD_T = 64, 46, 150, 70, 30

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:20px;color:#222}
h1{font-size:20px} h2{font-size:16px;margin:18px 0 4px}
table{border-collapse:collapse;margin:6px 0} td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
.bad{color:#b00;font-weight:bold} .good{color:#070;font-weight:bold}
svg{border:1px solid #eee;background:#fff} .edge{fill:none} .node{cursor:pointer;stroke:#333;stroke-width:1}
.edited{stroke:#d00;stroke-width:3} .dim{opacity:.08} .hot{opacity:1!important}
.rowlabel{font-size:11px;fill:#555} .toklabel{font-size:12px;fill:#000}
#tip{position:fixed;display:none;background:#fffbe6;border:1px solid #aaa;padding:6px 8px;font-size:12px;max-width:360px;pointer-events:none;white-space:pre-wrap}
"""

SCRIPT = """
const info = JSON.parse(document.getElementById('node-info').textContent);
const tip = document.getElementById('tip');
document.querySelectorAll('.node').forEach(el => {
  el.addEventListener('mousemove', e => {
    tip.textContent = info[el.dataset.graph][el.dataset.id] || el.dataset.id;
    tip.style.display = 'block'; tip.style.left = (e.clientX + 14) + 'px'; tip.style.top = (e.clientY + 14) + 'px';
  });
  el.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
  el.addEventListener('click', e => {
    e.stopPropagation();
    const svg = el.closest('svg'), id = el.dataset.id;
    svg.querySelectorAll('.edge,.node').forEach(x => x.classList.add('dim'));
    el.classList.add('hot');
    svg.querySelectorAll('.edge').forEach(x => {
      if (x.dataset.s === id || x.dataset.t === id) {
        x.classList.add('hot');
        svg.querySelectorAll('.node').forEach(n => { if (n.dataset.id === x.dataset.s || n.dataset.id === x.dataset.t) n.classList.add('hot'); });
      }
    });
  });
});
document.querySelectorAll('svg').forEach(svg => svg.addEventListener('click', () => {
  svg.querySelectorAll('.dim,.hot').forEach(x => x.classList.remove('dim', 'hot'));
}));
"""

KIND_COLOURS = {"q": "#8dd3c7", "k": "#80b1d3", "v": "#bebada", "o": "#fb8072", "gate": "#fdb462", "up": "#b3de69", "down": "#fccde5"}


def node_colour(d: dict) -> str:
    if d["kind"] == "token":
        return "#dddddd"
    if d["kind"] == "logit":
        return "#ffd700"
    last = d["module"].split(".")[-1].replace("_proj", "")
    for key, colour in KIND_COLOURS.items():
        if last.startswith(key) or last.endswith(key):
            return colour
    return "#cccccc"


def _xy(d: dict, n_rows: int) -> tuple[float, float]:
    return PAD_L + d["x"] * COL, PAD_T + (n_rows - 1 - d["y"]) * ROW


def describe(d: dict) -> str:
    """The hover text of a node."""
    if d["kind"] == "token":
        return f"input token {d['token']!r} at position {d['position']}\ninfluence on the target {d['influence']:.3f}"
    if d["kind"] == "logit":
        return f"target: logit of {d['token']!r} at position {d['position']} = {d['logit']:.3f}"
    lines = [
        f"{d['module']} #{d['index']} at position {d['position']}",
        f"causal importance {d['ci']:.3f}, activation {d['act']:+.3f}, influence {d['influence']:.3f}",
        "fires on (this prompt): " + " ".join(map(repr, d.get("fires_on", []))),
    ]
    if d.get("promotes"):
        lines.append("promotes: " + " ".join(map(repr, d["promotes"])))
    if d.get("edited"):
        lines.append(f"EDITED: {d['edited']}")
    return "\n".join(lines)


def svg(graph: dict, rows: list[str], n_positions: int, gi: int) -> str:
    """One graph as SVG elements (edges first, then nodes, then labels)."""
    n_rows = len(rows)
    width, height = PAD_L + n_positions * COL, PAD_T + n_rows * ROW + PAD_B
    at = {d["id"]: _xy(d, n_rows) for d in graph["nodes"]}
    biggest = max((abs(e["attr"]) for e in graph["edges"]), default=1.0) or 1.0
    out = [f'<svg id="graph-{gi}" width="{width}" height="{height}" viewBox="0 0 {width} {height}">']
    for i, r in enumerate(rows):
        ry = PAD_T + (n_rows - 1 - i) * ROW
        out.append(f'<text class="rowlabel" x="4" y="{ry + 4:.1f}">{escape(r)}</text>')
    for e in sorted(graph["edges"], key=lambda e: abs(e["attr"])):
        (x1, y1), (x2, y2) = at[e["source"]], at[e["target"]]
        w = 0.4 + 4.0 * abs(e["attr"]) / biggest
        colour = "#1f5fbf" if e["attr"] > 0 else "#d62728"
        op = 0.25 + 0.65 * abs(e["attr"]) / biggest
        mid = (y1 + y2) / 2
        out.append(
            f'<path class="edge" data-s="{escape(e["source"])}" data-t="{escape(e["target"])}" d="M{x1:.1f},{y1:.1f} C{x1:.1f},{mid:.1f} {x2:.1f},{mid:.1f} {x2:.1f},{y2:.1f}" '
            f'stroke="{colour}" stroke-width="{w:.2f}" stroke-opacity="{op:.2f}"><title>{e["attr"]:+.4f}</title></path>'
        )
    for d in graph["nodes"]:
        x, y = at[d["id"]]
        cls = "node edited" if d.get("edited") else "node"
        attrs = f'class="{cls}" data-graph="{gi}" data-id="{escape(d["id"])}" fill="{node_colour(d)}"'
        if d["kind"] == "component":
            out.append(f'<circle {attrs} cx="{x:.1f}" cy="{y:.1f}" r="{4 + 5 * min(1.0, d["ci"]):.1f}"/>')
        else:
            out.append(f'<rect {attrs} x="{x - 9:.1f}" y="{y - 9:.1f}" width="18" height="18"/>')
    for p in range(n_positions):
        tx = PAD_L + p * COL
        tok = next((d["token"] for d in graph["nodes"] if d["kind"] == "token" and d["position"] == p), None)
        if tok is not None:
            out.append(
                f'<text class="toklabel" text-anchor="end" transform="translate({tx + 4:.1f},{PAD_T + n_rows * ROW - 10:.1f}) rotate(-40)">{escape(repr(tok))}</text>'
            )
    out.append("</svg>")
    return "\n".join(out)


def _faith_table(f: dict) -> str:
    rows = [
        ("full model", f["full"]),
        ("every component at its CI (no Δ)", f["all_ci"]),
        ("only the graph's nodes, at their CI", f["graph"]),
        (f"graph + PGD on everything else ({f['pgd_steps']} steps)", f["pgd"]),
        ("every node above the threshold + the same PGD", f["pgd_all"]),
    ]
    body = "".join(
        f"<tr><td>{escape(k)}</td><td>{o['prob']:.4f}</td><td>{o['logit']:.3f}</td><td>{o['rank']}</td><td>{escape(repr(o['top']))}</td></tr>" for k, o in rows
    )
    cls = "good" if f["reproduces"] and f["survives_pgd"] else "bad"
    return (
        f'<table class="faith"><tr><th>condition</th><th>p(target)</th><th>logit</th><th>rank</th><th>top prediction</th></tr>{body}</table>'
        f'<p class="{cls}">{escape(f["verdict"])}</p>'
        + "<p>With the k most influential nodes only (CI masks): "
        + ", ".join(f"k={c['nodes']}: p={c['prob']:.3f}" + ("" if c["rank"] == 0 else f" (rank {c['rank']})") for c in f["curve"])
        + "</p>"
    )


def html_page(result: dict) -> str:
    """The whole page."""
    n_pos = len(result["tokens"])
    info = {str(gi): {d["id"]: describe(d) for d in g["nodes"]} for gi, g in enumerate(result["graphs"])}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>editor graph</title>',
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Attribution graph: {escape(repr(result['prompt']))}</h1>",
    ]
    s = result["settings"]
    parts.append(
        f"<p>Nodes: input tokens (bottom), components with causal importance &gt; {s['threshold']} at a position (one row per matrix, "
        f"circle size = CI), the target logit (top). Edges: attr(s→t) = (∂a_t/∂a_s)·a_s·g_s, blue positive, red negative, pruned to "
        f"{s['node_fraction']:.0%} of the influence (nodes) and {s['edge_fraction']:.0%} (edges). Hover a node for details; click to highlight its edges.</p>"
    )
    if "edit" in result:
        e = result["edit"]
        parts.append(
            f"<h2>Edit: {escape(str(e.get('summary')))} ({escape(str(e.get('method')))})</h2>"
            f"<p>p(target) {e['target_prob_before']:.4f} → {e['target_prob_after']:.4f}; edited components are ringed in red.</p>"
        )
    for gi, g in enumerate(result["graphs"]):
        c, t = g["counts"], g["target"]
        parts.append(
            f'<div class="graph"><h2>{escape(g["title"])}: target {escape(repr(t["token"]))} (p = {t["prob"]:.4f})</h2>'
            f"<p>{c['nodes']} nodes and {c['edges']} edges kept of {c['nodes_above_threshold']} components above threshold and {c['edges_nonzero']} non-zero edges."
            + (f" Edited components: {c['edited_above_threshold']} above threshold, {c['edited_kept']} kept (ringed in red)." if "edit" in result else "")
            + "</p>"
            + _faith_table(g["faithfulness"])
            + svg(g, result["rows"], n_pos, gi)
            + "</div>"
        )
    data = json.dumps(info).replace("</", "<\\/")
    parts += [
        '<div id="tip"></div>',
        f'<script type="application/json" id="node-info">{data}</script>',
        f"<script>{SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts)
