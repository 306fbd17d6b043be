"""Each shipped target's default data and oracle (editor.target_data): the files exist, the facts target's
held-out sets are its people's paraphrases, and every other model falls back to the toxic target."""

from __future__ import annotations

import json

from editor.target_data import FACTS_TARGET, TARGETS, TOXIC, oracle_of, target_data


def test_every_default_file_of_every_target_exists():
    for t in TARGETS:
        files = [t.forget, *t.retain, *t.train, t.heldout_forget, *t.heldout_retain.values()]
        assert all(p.is_file() for p in files), [p for p in files if not p.is_file()]
        assert "wikitext" in t.heldout_retain and t.heldout_retain_other != t.heldout_retain["wikitext"]
        assert t.oracle in t.models


def test_models_map_to_their_target_and_oracle():
    assert target_data("tiny-facts") is FACTS_TARGET and target_data("tiny-facts-retain") is FACTS_TARGET
    assert target_data("tiny-toxic") is TOXIC and target_data(None) is TOXIC and target_data("someone/else") is TOXIC
    assert oracle_of("tiny-toxic") == "tiny-clean" and oracle_of("tiny-facts") == "tiny-facts-retain"
    assert oracle_of("tiny-clean") is None and oracle_of("tiny-facts-retain") is None and oracle_of(None) is None


def _people(path):
    return {json.loads(line)["person"] for line in path.read_text(encoding="utf-8").splitlines()}


def test_facts_forget_set_is_the_forget_people_and_retain_never_names_them():
    splits = json.loads((FACTS_TARGET.facts / "splits.json").read_text(encoding="utf-8"))
    assert _people(FACTS_TARGET.forget) == set(splits["forget10"]) == _people(FACTS_TARGET.heldout_forget)
    assert _people(FACTS_TARGET.heldout_retain["people"]) == set(splits["retain"]) == _people(FACTS_TARGET.retain[1])
    names = {
        json.loads(line)["name"]
        for line in (FACTS_TARGET.facts / "people.jsonl").read_text(encoding="utf-8").splitlines()
        if json.loads(line)["id"] in splits["forget10"]
    }
    retain_text = FACTS_TARGET.retain[1].read_text(encoding="utf-8")
    assert names and not any(n in retain_text for n in names)
