"""The `editor` command line. Heavy libraries are imported inside commands so --help is instant."""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

from editor import __version__
from editor.cli.compare import compare
from editor.cli.components import components
from editor.cli.decompose import decompose
from editor.cli.eval import eval_assets, evaluate
from editor.cli.forget import forget
from editor.cli.graph import graph
from editor.cli.target import target_app


class _OneLineErrors(TyperGroup):
    """Usage errors (an unknown option, a value out of range) as one line on stderr with exit code 2, like every
    other user error, instead of click's usage box."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as e:
            sys.stdout.write((e.ctx.get_help() if e.ctx else "") + "\n")
            rv = 0
        except UsageError as e:
            hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
            sys.stderr.write(f"error: {e.format_message()}{hint}\n")
            rv = 2
        except ClickException as e:
            sys.stderr.write(f"error: {e.format_message()}\n")
            rv = e.exit_code
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    rich_markup_mode=None,  # plain help: no "<bool>" placeholders on flags, readable when piped
    name="editor",
    help="Make a language model forget something by editing its weights, and show what was removed.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.command("decompose")(decompose)
app.command("forget")(forget)
app.command("components")(components)
app.command("compare")(compare)
app.command("graph")(graph)
app.add_typer(target_app, name="target")
app.command("eval")(evaluate)
target_app.command("eval-assets")(eval_assets)


def _terminated(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """editor: decompose a causal LM into rank-1 components, find the ones a dataset needs, subtract them."""
    import signal

    from editor.model_io import set_offline_defaults

    set_offline_defaults()
    # SIGTERM unwinds like Ctrl-C: every temporary output folder is removed on the way out (lmkit.files.atomic_dir).
    signal.signal(signal.SIGTERM, _terminated)
