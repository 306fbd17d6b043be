"""The scoring harness: frontier reads, retrain-equivalence and matched levels on hand-made points."""

from __future__ import annotations

import pytest

from evals.frontier import Scored, at_level, frontier_at, matched_level, oracle_damage_of, reading, retrain_equivalence

BASE = {"wikitext": 4.0, "benign": 5.0}
ORACLE = {"wikitext": 4.4, "benign": 5.5}  # +10% on both: the oracle's own damage is 10%


def point(forget: float, wikitext: float, benign: float) -> Scored:
    return Scored(forget, {"wikitext": wikitext, "benign": benign}, 2.0, BASE, 4.0, ORACLE)


def test_gap_damage_and_oracle_relative_change_by_hand():
    p = point(3.0, 4.04, 5.1)  # gap (3 − 2)/(4 − 2) = 50%; damage mean(+1%, +2%) = 1.5%
    assert p.gap_closed == pytest.approx(0.5)
    assert p.damage == pytest.approx(0.015)
    assert p.retain_vs_oracle == pytest.approx({"wikitext": 4.04 / 4.4 - 1, "benign": 5.1 / 5.5 - 1})
    assert p.retrain_equivalent
    assert not point(3.0, 4.5, 5.0).retrain_equivalent  # WikiText worse than the oracle's
    assert Scored(3.0, BASE, 2.0, BASE).gap_closed is None  # no oracle, no gap


def test_frontier_reads_only_measured_points_within_the_damage_level():
    pts = [point(2.2, 4.0, 5.0), point(2.6, 4.02, 5.04), point(3.2, 4.2, 5.2)]  # damage 0%, 0.65%, 4.5%
    assert frontier_at(pts, 0.005).gap_closed == pytest.approx(0.1)
    assert frontier_at(pts, 0.01).gap_closed == pytest.approx(0.3)
    assert frontier_at(pts, 0.02).gap_closed == pytest.approx(0.3)  # the 4.5% point does not count
    assert frontier_at(pts[2:], 0.01) is None
    row = reading(pts)
    assert row["at 1%"] == pytest.approx(0.3) and row["at oracle damage"] == pytest.approx(0.6)
    assert oracle_damage_of(pts) == pytest.approx(0.1)


def test_retrain_equivalence_is_the_most_forgetting_within_the_oracles_retain_nll():
    pts = [point(3.0, 4.3, 5.4), point(3.8, 4.39, 5.6), point(3.5, 4.4, 5.5)]
    assert retrain_equivalence(pts).gap_closed == pytest.approx(0.75)  # 3.8 has benign 5.6 > 5.5
    assert retrain_equivalence([point(3.8, 4.39, 5.6)]) is None


def test_matched_level_is_what_every_method_reaches_and_at_level_picks_the_gentlest_point():
    a = [point(2.4, 4.0, 5.0), point(3.0, 4.1, 5.1)]  # reaches 50%
    b = [point(2.6, 4.01, 5.0), point(2.6, 4.0, 5.0), point(2.8, 4.3, 5.3)]  # reaches 40%
    assert matched_level({"a": a, "b": b}) == pytest.approx(0.4)
    assert matched_level({"a": a, "b": b}, cap=0.25) == pytest.approx(0.25)
    assert at_level(b, 0.3) is b[1]  # both close 30%: the one with less damage
    assert at_level(a, 0.6) is None
    assert matched_level({"a": a, "c": [point(2.0, 4.0, 5.0)]}) is None  # a method that forgets nothing
