"""`editor compare --quick` end to end on the session's tiny model and decomposition: every method's sweep,
held-out measurements, best points, relearning curves, and the four output files; bad input writes nothing."""

from __future__ import annotations

import json

import pytest

from editor.methods import METHODS
from editor.paths import HELDOUT
from tests.editor.clitools import Workspace, assert_clean, assert_user_error, invoke, save_tiny_llama, tree

VPD_KINDS = [n for n, m in METHODS.items() if m.needs_decomposition]


@pytest.fixture(scope="module")
def compared(workspace: Workspace, tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    oracle = save_tiny_llama(root / "oracle", seed=1)
    out = root / "cmp"
    before = tree(workspace.model)
    result = invoke(
        "compare",
        "--model",
        workspace.model,
        "--decomposition",
        workspace.dec,
        "--oracle",
        oracle,
        "--dataset",
        workspace.toxic,
        "--retain",
        workspace.retain,
        "--heldout-forget",
        HELDOUT["toxic"],
        "--heldout-retain",
        HELDOUT["wikitext"],
        "--heldout-retain",
        HELDOUT["benign"],
        "--out",
        out,
        "--quick",
        "--json",
        *[a for m in VPD_KINDS for a in ("--set", f"sweep.{m}=[1.0,20.0]")],
    )
    assert result.exit_code == 0, result.output
    assert_clean(result)
    assert tree(workspace.model) == before
    return out, json.loads(result.stdout)


def test_compare_writes_table_plots_and_json(compared):
    out, report = compared
    assert sorted(p.name for p in out.iterdir()) == [".editor-output", "compare.json", "compare.md", "pareto.png", "relearn.png"]
    assert not list(out.parent.glob("*.tmp-compare"))
    assert json.loads((out / "compare.json").read_text()) == report
    for png in ("pareto.png", "relearn.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "compare.md").read_text()
    for method in METHODS:
        assert f"| {method} | {report['strength_fields'][method]}=" in md
    assert "| original |" in md and "| oracle (" in md


def test_compare_measures_every_method_on_held_out_data(compared):
    _, report = compared
    assert report["data"]["heldout_forget"]["documents"] == 48
    assert set(report["data"]["heldout_retain"]) == {"wikitext", "tweets_benign"}
    assert report["strength_fields"] == {
        **dict.fromkeys(VPD_KINDS, "max_retain_kl"),
        "ga": "steps",
        "graddiff": "steps",
        "npo": "steps",
        "task-vector": "alpha",
    }
    base = report["original"]
    for method in METHODS:
        points = [p for p in report["points"] if p["method"] == method]
        assert points, (method, report["failures"])
        assert {p["strength"] for p in points} <= set(report["settings"]["sweep"][method])
        assert sum(p["best"] for p in points) == 1
        for p in points:
            damage = sum(p["retain_nll"][k] / base["retain_nll"][k] - 1 for k in base["retain_nll"]) / 2
            assert p["damage"] == pytest.approx(damage)
            gap = (p["forget_nll"] - base["forget_nll"]) / (report["oracle_metrics"]["forget_nll"] - base["forget_nll"])
            assert p["gap_closed"] == pytest.approx(gap)
            assert p["seconds"] > 0
        assert report["method_seconds"][method] > 0
    # Gradient sweeps are cumulative: more steps take longer.
    ga = sorted((p for p in report["points"] if p["method"] == "ga"), key=lambda p: p["strength"])
    assert [p["seconds"] for p in ga] == sorted(p["seconds"] for p in ga)


def test_compare_relearning_curves(compared):
    _, report = compared
    assert set(report["relearn"]) == {"original", "oracle", *METHODS}
    for curve in report["relearn"].values():
        assert [p["step"] for p in curve] == [0, 2, 4]
    # Step 0 of the original model's curve is the same measurement as its held-out forget NLL.
    assert report["relearn"]["original"][0]["nll"] == pytest.approx(report["original"]["forget_nll"])
    # Each method is attacked at its least damaging point that closes the matched level (the level every method
    # reaches); when some method closes no gap at all there is no such level, and each is attacked at its best point.
    level = report["matched_level"]
    assert level is None or 0 < level <= 0.5
    for method in METHODS:
        points = [p for p in report["points"] if p["method"] == method]
        (picked,) = [p for p in points if p["relearned"]]
        if level is None:
            assert picked["best"]
        else:
            assert picked["gap_closed"] >= level - 1e-12
            assert all(p["damage"] >= picked["damage"] for p in points if p["gap_closed"] >= level)
        assert report["relearn"][method][0]["nll"] == pytest.approx(picked["forget_nll"], abs=1e-5)


def test_compare_reads_every_frontier_the_same_way(compared):
    out, report = compared
    for method in METHODS:
        readout = report["summary"][method]
        assert list(readout) == ["at 0.5%", "at 1%", "at 2%", "at oracle damage", "retrain-equivalence"]
        points = [p for p in report["points"] if p["method"] == method]
        within = [p["gap_closed"] for p in points if p["damage"] <= 0.01]
        assert readout["at 1%"] == (max(within) if within else None)
        eq = [p["gap_closed"] for p in points if all(v <= 0 for v in p["retain_vs_oracle"].values())]
        assert readout["retrain-equivalence"] == (max(eq) if eq else None)
    assert "retrain-equivalence" in (out / "compare.md").read_text()


def test_compare_bad_input_writes_nothing(workspace: Workspace, tmp_path):
    base = [
        "compare",
        "--model",
        workspace.model,
        "--decomposition",
        workspace.dec,
        "--oracle",
        "none",
        "--dataset",
        workspace.toxic,
        "--retain",
        workspace.retain,
        "--quick",
    ]
    out = tmp_path / "cmp"
    cases = [
        (["--set", "methods=[vpd,rmu]"], "unknown method 'rmu'"),
        (["--set", "sweep.ga=[2.5]"], "integers"),
        (["--set", "settings.npo.beta=-1"], "beta"),
        (["--set", "settings.ga.steps=3"], "sweep.ga"),
        (["--set", "relearn.steps=-1"], "relearn.steps"),
        (["--dataset", tmp_path / "missing.jsonl"], "no such file"),
        (["--decomposition", tmp_path / "no-decomposition"], "no-decomposition: no such folder"),  # the last --decomposition wins
    ]
    for extra, fragment in cases:
        result = invoke(*base, "--out", out, *extra)
        assert_user_error(result, fragment)
        assert list(tmp_path.iterdir()) == []
    out.mkdir()
    assert_user_error(invoke(*base, "--out", out), "already exists; pass --force")


def test_forget_vpd_takes_strength_and_set(workspace: Workspace, tmp_path):
    """`--strength` is VPD's retain budget and `--set` reaches VpdSettings, as for the baselines."""
    base = [
        "forget",
        "--model",
        workspace.model,
        "--decomposition",
        workspace.dec,
        "--dataset",
        workspace.toxic,
        "--retain",
        workspace.retain,
        "--out",
        tmp_path / "out",
    ]
    result = invoke(
        *base,
        "--strength",
        "20",
        "--set",
        "steps=3",
        "--set",
        "lr=0.05",
        "--set",
        "retain_weight=0",
        "--set",
        "stats_docs=32",
        "--set",
        "search_docs=16",
        "--dry-run",
        "--json",
    )
    assert result.exit_code == 0, result.output
    settings = json.loads(result.stdout)["settings"]
    assert settings["max_retain_kl"] == 20 and settings["steps"] == 3 and settings["retain_weight"] == 0 and settings["stats_docs"] == 32
    assert_user_error(invoke(*base, "--strength", "0.1", "--set", "max_retain_kl=0.1"), "--strength sets 'max_retain_kl' for vpd-write")
    assert_user_error(invoke(*base, "--set", "bogus=1"), "bogus")
    assert list(tmp_path.iterdir()) == []
