"""The one user-facing exception type: the CLI prints its message on one line and exits with code 2."""


class UserError(Exception):
    """A problem with the user's input (path, data, model, option), stated so they can fix it."""
