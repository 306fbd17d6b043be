"""The single stderr console and the progress-bar factory used by every command."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

console = Console(stderr=True)


class _LoggedProgress(Progress):
    """Without a terminal (CI, a log file) a live bar renders nothing: print a line every 10% instead."""

    def update(self, task_id, **kwargs) -> None:  # type: ignore[override]
        super().update(task_id, **kwargs)
        if self.console.is_terminal:
            return
        task = self._tasks[task_id]
        if not task.total:
            return
        tenth = int(10 * task.completed / task.total)
        if tenth > task.fields.get("_logged", -1):
            task.fields["_logged"] = tenth
            self.console.print(
                f"{task.description}: {int(task.completed)}/{int(task.total)} "
                f"({task.elapsed or 0:.0f}s) {task.fields.get('status', '')}",
                highlight=False,
                markup=False,
            )


def progress() -> Progress:
    """A progress bar on stderr: description, bar, n/N, elapsed, remaining, and a free-text status field."""
    return _LoggedProgress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=False,
    )


def before_after_table(metrics: dict[str, dict[str, float]]) -> Table:
    """The edit's NLL before/after table (metrics = {"before": {name: nll}, "after": {...}})."""
    table = Table(title="mean NLL per token (nats), on the data given")
    for col in ("", "before", "after", "change"):
        table.add_column(col, justify="right")
    for k, before in metrics["before"].items():
        after = metrics["after"][k]
        table.add_row(k, f"{before:.4f}", f"{after:.4f}", f"{after - before:+.4f}")
    return table
