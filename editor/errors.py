"""The one user-facing exception type, under the name `editor` code uses (lmkit's UserError itself)."""

from lmkit.errors import UserError as EditorError

__all__ = ["EditorError"]
