"""Reading forget/retain trade-offs the same way for every method: one scoring harness.

A point is one edit measured on held-out data: how much of the gap to the oracle it closes on the forget
set, and how much it raises each held-out retain NLL. From a method's points we read

* the frontier at a damage level: the most gap closed by a point whose mean retain damage is at most
  that level (no interpolation: only edits that were made and measured count);
* retrain-equivalence: the most gap closed by a point whose every retain NLL stays at or below the
  oracle's (the oracle never saw the forget data, so its retain NLLs are what "as if never trained on
  it" costs);
* a matched forgetting level across methods, so that robustness (relearning) is compared at the same
  gap closed instead of at each method's own best point.

Pure functions of measured numbers: no model, no torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

LEVELS = (0.005, 0.01, 0.02)  # mean retain damage levels the frontier is read at (besides the oracle's own)


@dataclass(frozen=True)
class Scored:
    """One measured edit: its held-out forget NLL and retain NLLs, against the original and the oracle."""

    forget_nll: float
    retain_nll: Mapping[str, float]
    base_forget: float
    base_retain: Mapping[str, float]
    oracle_forget: float | None = None
    oracle_retain: Mapping[str, float] | None = None

    @property
    def gap_closed(self) -> float | None:
        if self.oracle_forget is None or self.oracle_forget == self.base_forget:
            return None
        return (self.forget_nll - self.base_forget) / (self.oracle_forget - self.base_forget)

    @property
    def retain_change(self) -> dict[str, float]:
        """Relative change of each retain NLL against the original model."""
        return {k: self.retain_nll[k] / self.base_retain[k] - 1 for k in self.base_retain}

    @property
    def damage(self) -> float:
        """Mean relative retain NLL change (the x axis of every frontier)."""
        change = self.retain_change
        return sum(change.values()) / len(change)

    @property
    def retain_vs_oracle(self) -> dict[str, float] | None:
        """Relative difference of each retain NLL to the oracle's (≤ 0: no worse than never having trained on the forget set)."""
        if self.oracle_retain is None:
            return None
        return {k: self.retain_nll[k] / self.oracle_retain[k] - 1 for k in self.base_retain}

    @property
    def retrain_equivalent(self) -> bool:
        """Every retain NLL at or below the oracle's."""
        vs = self.retain_vs_oracle
        return vs is not None and all(v <= 0 for v in vs.values())


def frontier_at(points: Iterable[Scored], damage: float) -> Scored | None:
    """The point closing the most gap with mean retain damage ≤ `damage` (None when no point is that gentle)."""
    ok = [p for p in points if p.damage <= damage and p.gap_closed is not None]
    return max(ok, key=lambda p: (p.gap_closed, -p.damage), default=None)


def retrain_equivalence(points: Iterable[Scored]) -> Scored | None:
    """The point closing the most gap while every retain NLL stays at or below the oracle's."""
    ok = [p for p in points if p.retrain_equivalent and p.gap_closed is not None]
    return max(ok, key=lambda p: (p.gap_closed, -p.damage), default=None)


def reading(points: Sequence[Scored], levels: Sequence[float] = LEVELS) -> dict[str, float | None]:
    """One method's row of the summary: gap closed at each damage level, at the oracle's own damage, and
    retrain-equivalence (None where no point qualifies)."""

    def gap(p: Scored | None) -> float | None:
        return None if p is None else p.gap_closed

    row: dict[str, float | None] = {f"at {100 * d:g}%": gap(frontier_at(points, d)) for d in levels}
    oracle_damage = oracle_damage_of(points)
    row["at oracle damage"] = None if oracle_damage is None else gap(frontier_at(points, oracle_damage))
    row["retrain-equivalence"] = gap(retrain_equivalence(points))
    return row


def oracle_damage_of(points: Sequence[Scored]) -> float | None:
    """The oracle's own mean retain damage against the original (the same for every point of one comparison)."""
    p = next(iter(points), None)
    if p is None or p.oracle_retain is None:
        return None
    return sum(p.oracle_retain[k] / p.base_retain[k] - 1 for k in p.base_retain) / len(p.base_retain)


def matched_level(by_method: Mapping[str, Sequence[Scored]], cap: float = 0.5) -> float | None:
    """The forgetting level every method reaches (the smallest of their largest gaps closed), at most `cap`:
    robustness is compared there. None if some method never closes any gap."""
    reach = []
    for points in by_method.values():
        gaps = [p.gap_closed for p in points if p.gap_closed is not None]
        if not gaps or max(gaps) <= 0:
            return None
        reach.append(max(gaps))
    return min(min(reach), cap) if reach else None


def at_level(points: Iterable[Scored], level: float) -> Scored | None:
    """The least damaging point that closes at least `level` of the gap."""
    ok = [(p, p.gap_closed) for p in points if p.gap_closed is not None and p.gap_closed >= level]
    return min(ok, key=lambda pg: (pg[0].damage, -pg[1]), default=(None, 0.0))[0]


FACT_LEVELS = (0.0, 0.02, 0.05)  # retained-people accuracy drops the facts frontier is read at


def facts_reading(points: Iterable[Mapping[str, float]], base: Mapping[str, float], levels: Sequence[float] = FACT_LEVELS) -> dict[str, float | None]:
    """A method's facts frontier: the largest drop of the forget people's attribute accuracy among its points
    whose retained people's accuracy dropped by at most each level (accuracies as {"forget", "retain"})."""
    pts = list(points)

    def best(level: float) -> float | None:
        ok = [base["forget"] - p["forget"] for p in pts if base["retain"] - p["retain"] <= level + 1e-12]
        return max(ok, default=None)

    return {f"retain drop ≤ {100 * d:g} pt": best(d) for d in levels}
