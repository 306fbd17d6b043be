"""lm-evaluation-harness, for real, on the bundled tasks and an in-memory tiny model."""

from __future__ import annotations

import pytest

from editor.paths import HELDOUT
from evals.harness import BUNDLED, TaskError, check_standard_tasks, choice_pairs, run_lm_eval, task_manager
from lmkit.texts import load_texts


def test_choice_pairs_share_an_opening():
    toxic = ["RT @user: you are a clown", "@user shut up loser", "I hate this", "lonely"]
    benign = ["RT @user: nice game today", "@user thanks a lot", "Weather is good", "@user ok"]
    pairs = choice_pairs(toxic, benign, seed=0)
    assert [p["context"] for p in pairs] == ["RT @user:", "@user"]  # "Weather" has no toxic match; the second "@user" none left
    for p in pairs:
        assert p["gold"] in (0, 1) and len(p["choices"]) == 2
    assert pairs[0]["choices"][pairs[0]["gold"]] == "you are a clown"
    assert pairs[1]["choices"][1 - pairs[1]["gold"]] == "thanks a lot"


def test_heldout_pairs_are_enough():
    pairs = choice_pairs(load_texts(HELDOUT["toxic"]).texts, load_texts(HELDOUT["benign"]).texts)
    assert len(pairs) >= 300
    assert 0.3 < sum(p["gold"] for p in pairs) / len(pairs) < 0.7  # the toxic choice is not always in one place


def test_bundled_tasks_run_in_lm_eval(tiny, tmp_path):
    model, tok = tiny
    toxic, benign = load_texts(HELDOUT["toxic"]).texts, load_texts(HELDOUT["benign"]).texts
    docs = {
        "editor_wikitext": load_texts(HELDOUT["wikitext"]).texts[:6],
        "editor_forget": toxic[:6],
        "editor_retain": benign[:6],
        "editor_toxic_choice": choice_pairs(toxic, benign)[:6],
    }
    r = run_lm_eval(model, tok, list(BUNDLED), workdir=tmp_path, docs=docs, limit=4, batch_size=8)
    assert set(r["tasks"]) == set(BUNDLED)
    for name in ("editor_wikitext", "editor_forget", "editor_retain"):
        m = r["tasks"][name]
        assert m["word_perplexity"] > 1 and m["byte_perplexity"] > 1 and m["bits_per_byte"] > 0
        assert r["n_samples"][name]["effective"] == 4
    assert 0.0 <= r["tasks"]["editor_toxic_choice"]["acc"] <= 1.0
    assert "acc_norm" in r["tasks"]["editor_toxic_choice"]
    assert r["lm_eval_version"]


def test_unknown_task_names_near_matches(tmp_path):
    with pytest.raises(TaskError, match="did you mean editor_wikitext"):
        task_manager(None, ["editor_wikitxt"], include_defaults=False)


def test_task_needing_a_download_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "hub_task.yaml").write_text(
        "task: needs_hub\ndataset_path: some-org/not-here\ntest_split: test\noutput_type: multiple_choice\n"
        "doc_to_text: '{{q}}'\ndoc_to_choice: ['a', 'b']\ndoc_to_target: 0\n"
    )
    tm = task_manager(tmp_path, [], include_defaults=False)
    with pytest.raises(TaskError, match="needs_hub' cannot run: editor runs offline"):
        check_standard_tasks(tm, ["needs_hub"])
