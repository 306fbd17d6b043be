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
                f"{task.description}: {int(task.completed)}/{int(task.total)} ({task.elapsed or 0:.0f}s) {task.fields.get('status', '')}",
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


def before_after_table(metrics: dict[str, dict[str, float]]) -> tuple[str, list[str], list[list[str]]]:
    """The edit's NLL before/after table (metrics = {"before": {name: nll}, "after": {...}}) for `result_table`."""
    rows = [[k, f"{b:.4f}", f"{metrics['after'][k]:.4f}", f"{metrics['after'][k] - b:+.4f}"] for k, b in metrics["before"].items()]
    return "mean NLL per token (nats), on the data given", ["", "before", "after", "change"], rows


def result_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A result table on stdout: a rich table on a terminal, plain markdown (never cut) when piped."""
    import sys

    out = Console(file=sys.stdout)
    if out.is_terminal:
        table = Table(title=title)
        for col in columns:
            table.add_column(col, overflow="fold")
        for row in rows:
            table.add_row(*row)
        out.print(table)
        return
    lines = [f"{title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in row) + " |" for row in rows]
    sys.stdout.write("\n".join(lines) + "\n\n")
