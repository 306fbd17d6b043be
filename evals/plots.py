"""PNG line plots for reports (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".png", dir=path.parent)
        os.close(fd)
        try:
            fig.savefig(tmp, format="png")
            os.chmod(tmp, 0o644)  # mkstemp files are private; a plot is meant to be read
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    finally:
        plt.close(fig)
    return path
