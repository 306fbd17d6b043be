"""Where a decomposition's curves go besides `metrics.jsonl`: a `metrics.png` beside it (redrawn at every
evaluation) and, optionally, TensorBoard event files (offline; the `tensorboard` package is optional).

A run can take days on a GPU: `metrics.png` shows the loss curves at a glance, and
`tensorboard --logdir OUT.partial/tensorboard` (or `OUT/tensorboard` once finished) follows them live.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

from decompose.errors import DecompositionError

LOGS = ("tensorboard",)
TENSORBOARD_DIR = "tensorboard"
PLOT = "metrics.png"
NOT_LOSSES = {"lr", "p", "l0"}  # training-record keys that are not loss terms


def check_log(log: str | None) -> None:
    """`log` names a known logger whose package is installed (checked without importing it)."""
    if log is None:
        return
    if log not in LOGS:
        raise DecompositionError(f"--log {log}: unknown logger; choose one of {', '.join(LOGS)}")
    if importlib.util.find_spec("tensorboard") is None:
        raise DecompositionError(
            f"--log {log}: the tensorboard package is not installed (pip install tensorboard); metrics.jsonl and metrics.png are written without it"
        )


class TensorBoardLog:
    """Every numeric value of every metrics record as a scalar `<kind>/<name>` at its step."""

    def __init__(self, directory: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(directory))

    def write(self, record: dict) -> None:
        step, kind = int(record["step"]), str(record.get("kind", "train"))
        for key, value in record.items():
            if key not in {"step", "kind"} and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(f"{kind}/{key}", value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _series(records: list[dict], keep) -> dict[str, tuple[list[int], list[float]]]:
    out: dict[str, tuple[list[int], list[float]]] = {}
    for r in records:
        for key, value in r.items():
            if key in {"step", "kind"} or not keep(key) or not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            steps, values = out.setdefault(key, ([], []))
            steps.append(int(r["step"]))
            values.append(float(value))
    return out


def plot_metrics(metrics_path: Path, png_path: Path | None = None) -> Path | None:
    """Draw the curves of `metrics.jsonl` into `metrics.png` beside it (or `png_path`): training loss terms,
    evaluation CE and evaluation KL / L0. Written atomically; returns the path, or None with nothing to draw."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from lmkit.files import atomic_file

    # Re-read at every evaluation on purpose: the file (a line per 50 steps and per evaluation) reads in
    # milliseconds next to an evaluation, and it alone holds a resumed run's earlier lines.
    records = read_metrics(Path(metrics_path))
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    panels = [
        ("training loss terms", _series(train, lambda k: k not in NOT_LOSSES), "log"),
        ("evaluation: cross-entropy (nats/token)", _series(evals, lambda k: k.startswith("ce/") and k != "ce/zero"), "linear"),
        (
            "evaluation: KL to the target, mean L0 per matrix",
            _series(evals, lambda k: (k.startswith("kl/") and k != "kl/zero") or k == "l0/mean_per_matrix"),
            "log",
        ),
    ]
    panels = [p for p in panels if p[1]]
    if not panels:
        return None
    png = Path(png_path) if png_path is not None else Path(metrics_path).with_name(PLOT)
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    for ax, (title, series, scale) in zip(axes[0], panels):
        for name, (steps, values) in sorted(series.items()):
            positive = scale != "log" or all(v > 0 for v in values)
            ax.plot(steps, values if positive else [abs(v) for v in values], marker="." if len(steps) < 40 else None, label=name)
        ax.set_yscale(scale)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    last = records[-1]["step"] if records else 0
    fig.suptitle(f"{Path(metrics_path).parent.name}: step {last}", fontsize=11)
    fig.tight_layout()
    with atomic_file(png) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return png
