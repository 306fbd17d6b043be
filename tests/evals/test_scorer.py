"""The toxicity scorer: checked against labelled tweets it was not trained on."""

from __future__ import annotations

import math

import pytest

from editor.paths import EXAMPLES, HELDOUT, TRAIN
from evals.scorer import TokenScorer, classification_metrics, load_scorer, train_token_scorer
from lmkit.texts import load_texts


def test_metrics_by_hand():
    m = classification_metrics([0.9, 0.6, 0.4], [0.1, 0.5])
    assert m["accuracy"] == pytest.approx(3 / 5)  # right: 0.9, 0.6 (toxic), 0.1 (non-toxic); 0.5 counts as toxic
    assert m["recall_toxic"] == pytest.approx(2 / 3)
    assert m["recall_nontoxic"] == pytest.approx(1 / 2)
    # pairs (toxic > nontoxic): 0.9>0.1,0.9>0.5,0.6>0.1,0.6>0.5,0.4>0.1 = 5 of 6
    assert m["roc_auc"] == pytest.approx(5 / 6)


def test_shipped_scorer_on_heldout_tweets():
    """The shipped scorer was trained on the training split only; the held-out tweets are new to it."""
    scorer = load_scorer("project", project_dir=EXAMPLES / "scorer")
    assert scorer.name == "editor-token-logreg"
    toxic, benign = load_texts(HELDOUT["toxic"]).texts, load_texts(HELDOUT["benign"]).texts
    m = classification_metrics(scorer.score(toxic), scorer.score(benign))
    assert m["balanced_accuracy"] > 0.85 and m["roc_auc"] > 0.93, m
    # scorer.json reports the same numbers the shipped weights give
    assert scorer.meta["heldout_metrics"]["accuracy"] == pytest.approx(m["accuracy"], abs=1e-9)


def test_trains_and_round_trips(tmp_path, shipped_tokenizer):
    toxic = load_texts(TRAIN["toxic"]).texts[:600]
    benign = load_texts(TRAIN["benign"]).texts[:600]
    model = train_token_scorer(shipped_tokenizer, toxic, benign, epochs=5)
    h_toxic, h_benign = load_texts(HELDOUT["toxic"]).texts[:200], load_texts(HELDOUT["benign"]).texts[:200]
    m = classification_metrics(model.score(h_toxic), model.score(h_benign))
    assert m["balanced_accuracy"] > 0.75, m
    model.save(tmp_path / "s", extra={"note": "test"})
    again = TokenScorer.load(tmp_path / "s")
    assert again.meta["note"] == "test"
    a, b = model.score(h_toxic[:20]), again.score(h_toxic[:20])
    assert all(math.isclose(x, y, abs_tol=1e-6) for x, y in zip(a, b))
    assert model.score([]) == []


def test_unavailable_scorers_are_errors(tmp_path):
    with pytest.raises(ValueError, match="Detoxify"):
        load_scorer("detoxify", project_dir=EXAMPLES / "scorer", detoxify_checkpoint=tmp_path / "missing.ckpt")
    with pytest.raises(ValueError, match="not a scorer directory"):
        load_scorer("project", project_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown scorer"):
        load_scorer("perspective", project_dir=tmp_path)
