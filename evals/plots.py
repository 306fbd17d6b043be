"""PNG line plots for reports (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

from lmkit.files import atomic_file


def save_plot(
    path: str | Path,
    *,
    series: dict[str, list[tuple[float, float]]],
    xlabel: str,
    ylabel: str,
    title: str,
    lines: bool = True,
) -> Path:
    """Write one PNG with one labelled line (with markers) per series, or markers only when `lines=False`.

    The file is written to a temporary sibling and renamed into place, so a crash leaves no half-written
    image. Returns the path written.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    try:
        for label, points in series.items():
            if not points:
                continue
            xs = [float(p[0]) for p in points]
            ys = [float(p[1]) for p in points]
            ax.plot(xs, ys, marker="o", markersize=4, linestyle="-" if lines else "none", label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if any(series.values()):
            ax.legend(fontsize=8)
        fig.tight_layout()
        with atomic_file(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return path
