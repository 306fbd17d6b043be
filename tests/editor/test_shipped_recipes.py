"""Every shipped decomposition recipe parses, and the tiny-toxic ones match matrices of tiny-toxic."""

from __future__ import annotations

from pathlib import Path

import pytest

from decompose.config import DecomposeConfig
from decompose.targets import resolve_targets
from editor.model_io import load_model
from editor.recipe import load_recipe

RECIPES = sorted((Path(__file__).parents[2] / "recipes" / "decompose").glob("*.yaml"))


def test_there_are_recipes():
    assert {"tiny-toxic", "bench-llama2-d128", "gpt2-small"} <= {p.stem for p in RECIPES}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_parses(path):
    cfg = load_recipe(DecomposeConfig, str(path), "decompose")
    assert cfg.name == path.stem


@pytest.mark.parametrize("path", [p for p in RECIPES if p.stem.startswith("tiny-toxic")], ids=lambda p: p.stem)
def test_tiny_toxic_recipe_targets_resolve(path):
    cfg = load_recipe(DecomposeConfig, str(path), "decompose")
    model, _ = load_model("tiny-toxic")
    resolved = resolve_targets(model, cfg.targets)
    assert resolved and all(c in cfg.targets.values() for _, c in resolved)
