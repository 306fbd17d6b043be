"""The decomposition's own user-facing error; `decompose` never imports `editor`, whose CLI maps it to exit code 2."""


class DecompositionError(ValueError):
    """A user-facing problem with a decomposition's inputs (model, patterns, sizes), stated so it can be fixed."""
