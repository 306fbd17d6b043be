"""The graph as a PNG (matplotlib, Agg): the same layout as the HTML page, one panel per graph."""

from __future__ import annotations

from pathlib import Path

from editor.graph_html import node_colour


def draw_png(result: dict, path: Path, dpi: int = 90) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    rows, tokens, graphs = result["rows"], result["tokens"], result["graphs"]
    width = max(8.0, 0.8 * len(tokens) + 3.0)
    height = max(3.0, 0.42 * len(rows) + 1.6)
    fig, axes = plt.subplots(len(graphs), 1, figsize=(width, height * len(graphs)), squeeze=False)
    for ax, g in zip(axes[:, 0], graphs):
        at = {d["id"]: (d["x"], d["y"]) for d in g["nodes"]}
        biggest = max((abs(e["attr"]) for e in g["edges"]), default=1.0) or 1.0
        for e in sorted(g["edges"], key=lambda e: abs(e["attr"])):
            share = abs(e["attr"]) / biggest
            ax.add_patch(
                FancyArrowPatch(
                    at[e["source"]],
                    at[e["target"]],
                    arrowstyle="-",
                    connectionstyle="arc3,rad=0.0",
                    color="#1f5fbf" if e["attr"] > 0 else "#d62728",
                    lw=0.3 + 2.5 * share,
                    alpha=0.2 + 0.7 * share,
                    zorder=1,
                )
            )
        for d in g["nodes"]:
            edited = bool(d.get("edited"))
            size = 30 + 60 * min(1.0, d.get("ci", 1.0)) if d["kind"] == "component" else 70
            marker = "o" if d["kind"] == "component" else "s"
            ax.scatter(
                [d["x"]],
                [d["y"]],
                s=size,
                c=node_colour(d),
                marker=marker,
                edgecolors="#d00" if edited else "#333",
                linewidths=2.0 if edited else 0.6,
                zorder=2,
            )
        ax.set_yticks(range(len(rows)), rows, fontsize=7)
        ax.set_xticks(range(len(tokens)), [repr(t) for t in tokens], rotation=45, ha="right", fontsize=7)
        ax.set_xlim(-0.7, len(tokens) - 0.3)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        f = g["faithfulness"]
        t = g["target"]
        ax.set_title(
            f"{g['title']}: target {t['token']!r} p={t['prob']:.3f}; kept nodes only p={f['graph']['prob']:.3f}, under PGD p={f['pgd']['prob']:.3f}\n"
            f"{g['counts']['nodes']} nodes, {g['counts']['edges']} edges"
            + (f" | edited (red rings): {g['counts']['edited_kept']} kept of {g['counts']['edited_above_threshold']}" if "edit" in result else ""),
            fontsize=8,
        )
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.suptitle(repr(result["prompt"]), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
