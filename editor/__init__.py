"""editor: make a language model forget something by editing its weights."""

__version__ = "0.1.0"
