"""The `editor` command line. Heavy libraries are imported inside commands so --help is instant."""

from __future__ import annotations

import typer

from editor import __version__
from editor.cli_compare import compare
from editor.cli_decompose import decompose
from editor.cli_eval import eval_assets, evaluate
from editor.cli_forget import components, forget
from editor.cli_target import target_app

app = typer.Typer(
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
app.add_typer(target_app, name="target")
app.command("eval")(evaluate)
target_app.command("eval-assets")(eval_assets)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """editor: decompose a causal LM into rank-1 components, find the ones a dataset needs, subtract them."""
    from editor.model_io import set_offline_defaults

    set_offline_defaults()


if __name__ == "__main__":  # python -m editor.cli / torchrun -m editor.cli
    app()
