"""`python -m editor.cli` and `torchrun -m editor.cli`: the same app as the `editor` command."""

from editor.cli import app

app()
