"""Rank components by how specific they are to the forget set: a pure function of gathered statistics."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from decompose.stats import ComponentStats


@dataclass(frozen=True)
class Candidate:
    module: str
    index: int
    score: float
    forget_mean_ci: float
    retain_mean_ci: float
    forget_density: float
    retain_density: float
    removal: float = 0.0  # σ(θ) after the relaxed-removal optimisation (editor.relax); 0 until then

    def to_dict(self) -> dict:
        return asdict(self)


def specificity(mu_f: float, mu_r: float, eps: float) -> float:
    """(μ_F − μ_R)·log((μ_F + ε)/(μ_R + ε)): large only when a component is both strongly used on the
    forget set and much less used on retained data (a one-component symmetric-KL-style contrast)."""
    return (mu_f - mu_r) * math.log((mu_f + eps) / (mu_r + eps))


def rank_candidates(
    forget: ComponentStats,
    retain: ComponentStats,
    min_forget_density: float = 1e-3,
    eps: float = 1e-4,
) -> list[Candidate]:
    """Components used more on the forget set than on retained data, most specific first."""
    out: list[Candidate] = []
    for name, mu_f_all in forget.mean_ci.items():
        mu_r_all, rho_f_all, rho_r_all = retain.mean_ci[name], forget.density[name], retain.density[name]
        for c in range(mu_f_all.numel()):
            mu_f, mu_r = float(mu_f_all[c]), float(mu_r_all[c])
            rho_f = float(rho_f_all[c])
            if mu_f <= mu_r or rho_f < min_forget_density:
                continue
            out.append(Candidate(name, c, specificity(mu_f, mu_r, eps), mu_f, mu_r, rho_f, float(rho_r_all[c])))
    out.sort(key=lambda cand: (-cand.score, -cand.forget_mean_ci, cand.module, cand.index))
    return out
