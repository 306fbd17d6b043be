"""Shared CLI plumbing: user errors become one message and exit code 2; results go to stdout."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape

from editor.console import console
from decompose.errors import DecompositionError
from editor.errors import EditorError

F = TypeVar("F", bound=Callable[..., Any])

SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Recipe override key=value (repeatable), e.g. train.steps=500.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
TextFieldOpt = Annotated[str, typer.Option("--text-field", help="JSONL field holding the text.")]


def user_errors(fn: F) -> F:
    """Run a command; a user error (EditorError, DecompositionError) is printed as one line on stderr with exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (EditorError, DecompositionError) as e:
            # escape: the message holds user text (paths, names) that is not rich markup;
            # soft_wrap: no hard line breaks inside paths when stderr is not a wide terminal.
            console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=1) + "\n")
