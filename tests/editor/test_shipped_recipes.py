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


def test_bench_recipe_has_the_reference_settings():
    """The speed/parity benchmark recipe must not inherit defaults that differ from the reference (issue 19)."""
    cfg = load_recipe(DecomposeConfig, "bench-llama2-d128", "decompose")
    assert cfg.grad_clip_components is None  # reference: grad_clip_norm_components null
    assert (cfg.lr_final_frac, cfg.lr_warmup_frac, cfg.weight_decay) == (1.0, 0.0, 0.0)  # constant rate, AdamW wd 0
    imp = cfg.importance
    assert imp is not None and (imp.beta, imp.p_start, imp.p_final, imp.p_anneal_start_frac, imp.p_anneal_end_frac) == (0.0, 2.0, 0.3, 0.0, 1.0)
    assert cfg.faithfulness is not None and cfg.faithfulness.warmup_steps == 0
    assert not cfg.autocast_bf16 and cfg.sigmoid_alpha == 0.01
