"""`editor compare` on a facts target: every point also measures the forget and retained people's attribute
accuracy, the facts frontier is read per method, and the relearning attack uses the target's attack set."""

from __future__ import annotations

from editor.compare_data import CompareData
from editor.targets.facts import FactsSpec, write_facts
from evals.facts import read_cloze
from tests.editor.clitools import Workspace, jsonl_texts


def test_compare_measures_facts_accuracy_and_reads_its_frontier(workspace: Workspace, tmp_path):
    from editor.compare import markdown, resolve_settings, result_json, run_compare, write_report
    from editor.model_io import load_model

    folder = tmp_path / "facts"
    write_facts(folder, FactsSpec(seed=5, people=20, unseen=2, bios_per_person=2, dates=8, employers=6, cities=8, universities=5))
    bios = lambda name: jsonl_texts(folder / f"{name}.jsonl", 100)  # noqa: E731
    data = CompareData(
        forget=bios("forget10"),
        retain=bios("retain"),
        heldout_forget=jsonl_texts(folder / "heldout-forget10.jsonl", 100),
        heldout_retain={"people": jsonl_texts(folder / "heldout-retain.jsonl", 100)},
        sources={
            "forget": {"source": "f", "documents": 4},
            "retain": {"source": "r", "documents": 36},
            "heldout_forget": {"source": "hf", "documents": 24},
            "heldout_retain": {"people": {"source": "hr", "documents": 216}},
        },
        facts=folder,
        attack=bios("relearn"),
        attack_heldout=jsonl_texts(folder / "heldout-relearn_eval.jsonl", 100),
    )
    settings = resolve_settings(
        ["methods=[ga,graddiff]", "sweep.ga=[1,3]", "sweep.graddiff=[2]", "facts_people=3", "relearn.steps=2", "relearn.eval_every=1", "relearn.batch_size=2"],
        quick=True,
    )
    lm, tok = load_model(str(workspace.model))
    oracle = load_model(str(workspace.model))
    result = run_compare(lm, tok, data, settings, None, oracle)
    forget_items = len(read_cloze(folder, "forget10"))
    assert forget_items == 2 * 6 * 2
    for m in (result.base, result.oracle):
        assert set(m["facts_accuracy"]) == {"forget", "retain"} and all(0 <= v <= 1 for v in m["facts_accuracy"].values())
    assert result.oracle["facts_accuracy"] == result.base["facts_accuracy"]  # the same weights as its own oracle
    assert {p.method for p in result.points} == {"ga", "graddiff"} and all(p.facts_accuracy for p in result.points)
    assert set(result.facts_summary) == {"ga", "graddiff"}
    for name, row in result.facts_summary.items():
        drops = [result.base["facts_accuracy"]["forget"] - p.facts_accuracy["forget"] for p in result.points if p.method == name]
        kept = [p for p in result.points if p.method == name and result.base["facts_accuracy"]["retain"] - p.facts_accuracy["retain"] <= 0.05]
        assert row["retain drop ≤ 5 pt"] == (max(result.base["facts_accuracy"]["forget"] - p.facts_accuracy["forget"] for p in kept) if kept else None)
        assert all(v is None or v <= max(drops) for v in row.values())
    assert result.attack_documents == len(data.attack) == 1 * 2  # the relearn person's biographies, not the forget set
    assert set(result.relearn) >= {"original", "oracle", "ga", "graddiff"}
    report = result_json(result, settings, data, "tiny", "tiny", 1.0)
    md = markdown(report)
    assert "forget people acc" in md and "Facts: the largest drop" in md and "fine-tuning on 2 forget documents" in md
    out = write_report(tmp_path / "cmp", report, force=False)
    assert {"compare.json", "compare.md", "pareto.png", "relearn.png", "facts.png"} <= {f.name for f in out.iterdir()}
    assert (out / "facts.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
