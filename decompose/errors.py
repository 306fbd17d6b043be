"""The decomposition's own user-facing error, a kind of lmkit's UserError (the CLI maps it to exit code 2)."""

from lmkit.errors import UserError


class DecompositionError(UserError, ValueError):
    """A user-facing problem with a decomposition's inputs (model, patterns, sizes), stated so it can be fixed."""
