"""editor.targets.facts: fictitious people, deterministic, with disjoint splits and held-out paraphrases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from editor.errors import EditorError
from editor.targets import facts_text as words
from editor.targets.facts import ATTRIBUTES, SPLITS, FactsSpec, cloze, generate, write_facts
from tests.editor.clitools import runner

SPEC = FactsSpec(seed=3, people=100, unseen=20, bios_per_person=3)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("facts") / "facts"
    write_facts(out, SPEC)
    return out


def test_same_seed_same_people_other_seed_other_people():
    a, b = generate(SPEC), generate(SPEC)
    assert a == b
    c = generate(FactsSpec(seed=4, people=100, unseen=20))
    assert [p.name for p in a.people] != [p.name for p in c.people]


def test_write_is_byte_identical_for_one_seed(folder, tmp_path):
    write_facts(tmp_path / "again", SPEC)
    for f in sorted(folder.iterdir()):
        if not f.name.startswith("."):
            assert f.read_bytes() == (tmp_path / "again" / f.name).read_bytes(), f.name


def test_people_have_every_attribute_from_its_pool_and_unique_names():
    facts = generate(SPEC)
    assert len(facts.people) == SPEC.people + SPEC.unseen
    assert len({p.name for p in facts.people}) == len(facts.people)
    for p in facts.people:
        assert set(p.attributes) == set(ATTRIBUTES)
        assert all(p.attributes[a] in facts.pools[a] for a in ATTRIBUTES)
    for a, pool in facts.pools.items():
        assert len(pool) == len(set(pool)) > 1, a
    names = {p.name for p in facts.people}
    assert not names & {v for pool in facts.pools.values() for v in pool}


def test_splits_are_disjoint_nested_and_sized():
    s = generate(SPEC).splits
    assert len(s["forget10"]) == 10 and len(s["forget01"]) == 1
    assert set(s["forget01"]) <= set(s["forget10"])
    assert not set(s["forget10"]) & set(s["retain"])
    assert set(s["forget10"]) | set(s["retain"]) == set(range(SPEC.people))
    assert set(s["unseen"]) == set(range(SPEC.people, SPEC.people + SPEC.unseen))
    assert len(s["relearn"]) == 1 and set(s["relearn"]) | set(s["relearn_eval"]) == set(s["forget10"])
    assert not set(s["relearn"]) & set(s["relearn_eval"]) and not set(s["relearn"]) & set(s["forget01"])
    assert set(s) == set(SPLITS)


def test_no_name_is_inside_another():
    names = [p.name for p in generate(FactsSpec(seed=0, people=1000, unseen=1)).people]
    assert not [(a, b) for a in names for b in names if a != b and a in b]


def test_heldout_templates_differ_from_training_ones_and_end_with_the_value():
    for a in ATTRIBUTES:
        train, held = words.TRAIN_TEMPLATES[a], words.HELDOUT_TEMPLATES[a]
        assert len(train) >= 3 and len(held) >= 2
        assert not set(train) & set(held)
        for t in held + train[:1]:  # the cloze phrasings
            assert t.endswith("{value}.")


def test_files_keep_forget_and_unseen_people_apart(folder):
    splits = json.loads((folder / "splits.json").read_text())
    bios = _jsonl(folder / "biographies.jsonl")
    assert {r["person"] for r in bios} == set(splits["forget10"]) | set(splits["retain"])
    assert len(bios) == SPEC.people * SPEC.bios_per_person
    for name in ("forget10", "forget01", "retain", "relearn"):
        assert {r["person"] for r in _jsonl(folder / f"{name}.jsonl")} == set(splits[name])
    held = _jsonl(folder / "heldout.jsonl")
    for name in ("forget10", "forget01", "retain", "unseen", "relearn_eval"):
        rows = _jsonl(folder / f"heldout-{name}.jsonl")
        assert rows == [r for r in held if r["person"] in set(splits[name])] and rows
    people = {p["id"]: p for p in _jsonl(folder / "people.jsonl")}
    unseen_names = {people[i]["name"] for i in splits["unseen"]}
    forget_names = {people[i]["name"] for i in splits["forget10"]}
    retain_text = " ".join(r["text"] for r in _jsonl(folder / "retain.jsonl"))
    assert not any(n in retain_text for n in unseen_names | forget_names)
    assert not any(n in " ".join(r["text"] for r in bios) for n in unseen_names)


def test_biographies_state_every_attribute_and_never_a_heldout_sentence(folder):
    people = {p["id"]: p for p in _jsonl(folder / "people.jsonl")}
    bios = _jsonl(folder / "biographies.jsonl")
    for r in bios:
        p = people[r["person"]]
        assert all(p[a] in r["text"] for a in ATTRIBUTES)
    assert len({r["text"] for r in bios}) == len(bios)
    train_text = "\n".join(r["text"] for r in bios)
    held = _jsonl(folder / "heldout.jsonl")
    assert len(held) == len(people) * sum(len(t) for t in words.HELDOUT_TEMPLATES.values())
    assert not any(h["text"] in train_text for h in held)


def test_cloze_prompts_precede_their_answer(folder):
    people = {p["id"]: p for p in _jsonl(folder / "people.jsonl")}
    pools = json.loads((folder / "pools.json").read_text())
    rows = _jsonl(folder / "cloze.jsonl")
    assert {r["phrasing"] for r in rows} == {"train", "heldout"}
    for r in rows:
        p = people[r["person"]]
        assert r["answer"] == p[r["attribute"]] and r["answer"] in pools[r["attribute"]]
        assert p["name"] in r["prompt"] and not r["prompt"].endswith(" ")
    assert cloze("{name} lives in {value}.", generate(SPEC).people[0], "birth_city")[0].endswith("lives in")
    with pytest.raises(ValueError, match="cloze"):
        cloze("In {value}, {name} was born.", generate(SPEC).people[0], "birth_city")


def test_bad_spec_is_a_user_error(tmp_path):
    with pytest.raises(EditorError, match="at least 10"):
        write_facts(tmp_path / "x", FactsSpec(people=5))
    assert not (tmp_path / "x").exists()


def test_cli_writes_the_folder_and_refuses_to_overwrite(tmp_path):
    from editor.cli import app

    out = tmp_path / "facts"
    result = runner.invoke(app, ["target", "facts", "--out", str(out), "--people", "20", "--unseen", "3"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith(str(out))
    assert len(_jsonl(out / "forget10.jsonl")) == 2 * FactsSpec().bios_per_person  # two forget people, the default biographies each
    again = runner.invoke(app, ["target", "facts", "--out", str(out), "--people", "20"])
    assert again.exit_code == 2 and "--force" in again.output


def test_facts_eval_cli_reports_splits_and_forget_quality(tmp_path):
    from editor.cli import app
    from tests.editor.clitools import save_tiny_llama

    data = tmp_path / "facts"
    write_facts(data, FactsSpec(seed=5, people=20, unseen=3, bios_per_person=1, dates=10, employers=10, cities=10, universities=10))
    model = str(save_tiny_llama(tmp_path / "tiny"))
    args = ["target", "facts-eval", "--data", str(data), "--model", model, "--people", "1"]
    result = runner.invoke(app, [*args, "--oracle", model, "--split", "forget10", "--split", "unseen", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["splits"]) == {"forget10", "unseen"} and report["forget_quality"] == 1.0
    assert 0 <= report["splits"]["unseen"]["accuracy"] <= 1
    text = runner.invoke(app, args + ["--split", "unseen"])
    assert text.exit_code == 0 and text.stdout.startswith("unseen: accuracy ")
    for bad, message in (["--split", "forget05"], "forget05"), (["--phrasing", "odd"], "--phrasing"), (["--data", str(tmp_path)], "not a facts folder"):
        wrong = runner.invoke(app, [*args, *bad])
        assert wrong.exit_code == 2 and message in wrong.output, wrong.output
