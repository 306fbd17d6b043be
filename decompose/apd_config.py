"""APD's settings (Braun et al. 2025, "Interpretability in Parameter Space", arXiv 2501.14926): kept apart
from its trainer (decompose.apd) so that the config imports no torch."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt

from decompose.config_base import BaseConfig


class ApdSettings(BaseConfig):
    """Parameter components spanning every decomposed matrix, trained for faithfulness, minimality and simplicity."""

    C: PositiveInt = Field(20, description="Number of parameter components; each has a piece in every decomposed matrix.")
    rank: PositiveInt | None = Field(None, description="Rank of each component's piece in each matrix (None: full rank, min(d_in, d_out)).")
    topk: float = Field(1.0, gt=0, description="Batch top-k: on average this many components per input run the minimality pass.")
    faithfulness_coeff: float = Field(1.0, ge=0, description="Weight of Σ_l ‖W_l − Σ_c P_{c,l}‖² / numel (components sum to the weights).")
    minimality_coeff: float = Field(1.0, ge=0, description="Weight of the top-k reconstruction loss (MSE to the target's output).")
    simplicity_coeff: float = Field(1e-2, ge=0, description="Weight of the Schatten-p quasi-norm of the active components' pieces.")
    schatten_p: float = Field(0.9, gt=0, le=2, description="p of the Schatten quasi-norm (p < 1 favours low rank).")
    attribution: Literal["gradient"] = Field("gradient", description="Σ_o (∂f_o/∂θ · P_c)²: each component's gradient attribution to every output.")
    warmup_steps: int = Field(200, ge=0, description="Faithfulness-only steps before main training (components start summing to the weights).")
    warmup_lr: float = Field(1e-3, gt=0, description="Learning rate of the faithfulness warmup optimiser (faithfulness.warmup_lr of vpd and spd).")
    init_scale: float = Field(1.0, gt=0, description="Scale of the random component init relative to the weight's RMS (then a faithfulness warmup).")
