"""Toy models with known mechanisms, trained from seeds, and the recovery score of a decomposition against them."""
