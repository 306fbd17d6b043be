"""Shared CLI plumbing: user errors become one message and exit code 2; results go to stdout."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape

from editor.console import console
from lmkit.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])

SetOpt = Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="Recipe override key=value (repeatable), e.g. train.steps=500.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
TextFieldOpt = Annotated[str, typer.Option("--text-field", help="JSONL field, or column of a Parquet/CSV file or saved dataset, holding the text.")]
ForceOpt = Annotated[bool, typer.Option(help="Replace an output folder that an earlier editor run wrote (never one holding other files).")]
ModelOpt = Annotated[str | None, typer.Option(help="Model name, local directory or hub id (default: tiny-toxic).")]
DecompOpt = Annotated[Path | None, typer.Option("--decomposition", help="Decomposition directory (default: the shipped one for a shipped model).")]


def user_errors(fn: F) -> F:
    """Run a command; a user error (lmkit UserError: EditorError, DecompositionError) is printed as one line on stderr with exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
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


def settings_from_options(cls, options: dict[str, tuple[str, Any]], origin: str, explicit_none: Collection[str] = frozenset()):
    """Validate a settings model from command options: {"--flag": ("field.path", value)}; a value of None
    means "not given" (the model's default) unless its flag is in `explicit_none`. A bad value is an
    EditorError naming the option the user typed (`origin`: what the options set, for the message)."""
    from editor.recipe import validate

    data: dict[str, Any] = {}
    flag_of: dict[tuple[str, ...], str] = {}
    for flag, (path, value) in options.items():
        if value is None and flag not in explicit_none:
            continue
        keys = tuple(path.split("."))
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
        flag_of[keys] = flag

    def name_of(loc: tuple[str, ...]) -> str | None:
        flag = next((f for keys, f in flag_of.items() if loc[: len(keys)] == keys), None)
        return f"{flag} {options[flag][1]}" if flag else None

    return validate(cls, data, origin, name_of)


def check_model_inputs(model: str | None, decomposition: Path | None) -> None:
    """The model and decomposition the user named exist, checked before torch loads (light checks only)."""
    from editor.errors import EditorError
    from editor.model_io import resolve_model

    resolve_model(model)
    if decomposition is not None:
        if not decomposition.is_dir():
            raise EditorError(f"--decomposition {decomposition}: no such folder")
        if not (decomposition / "decomposition.json").is_file():
            raise EditorError(f"--decomposition {decomposition} is not a decomposition (no decomposition.json); see `editor decompose`")


def check_device(device: str) -> None:
    """`--device` names a device this machine has: cpu, cuda or cuda:N (torch is imported only for cuda)."""
    import re

    from editor.errors import EditorError

    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise EditorError(f"--device {device}: expected cpu, cuda or cuda:N")
    if device == "cpu":
        return
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device.partition(":")[2] or 0)
    if index >= n:
        raise EditorError(f"--device {device}: this machine has {n} CUDA device(s)" + ("" if n else "; use --device cpu"))
