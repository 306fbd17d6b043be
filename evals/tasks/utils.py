"""Data loaders of the bundled lm-eval tasks (`custom_dataset: !function utils.<name>` in each YAML).

They make the tasks self-locating: `lm_eval --tasks editor_forget --include_path evals/tasks` (or
`TaskManager(include_path=...)`) reads the project's held-out files beside this checkout without any
template filling. Other data: `--metadata '{"forget_data": "my.jsonl"}'` (keys `wikitext_data`,
`forget_data`, `retain_data`, `toxic_data` + `benign_data` for the choice task; a path or a list of
paths in any format `lmkit.texts` reads, `text_field` for the column), or `editor eval --write-tasks DIR`.
`editor_facts` reads a folder written by `editor target facts` (`facts_data`, `facts_split`, `facts_phrasing`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

HELDOUT = Path(__file__).resolve().parents[2] / "examples" / "data" / "heldout"
FACTS = Path(__file__).resolve().parents[2] / "examples" / "data" / "facts"
DEFAULTS = {
    "wikitext_data": HELDOUT / "wikitext.txt",
    "forget_data": HELDOUT / "tweets_toxic.jsonl",
    "retain_data": HELDOUT / "tweets_benign.jsonl",
    "toxic_data": HELDOUT / "tweets_toxic.jsonl",
    "benign_data": HELDOUT / "tweets_benign.jsonl",
}


def _texts(key: str, kwargs: dict[str, Any]) -> list[str]:
    from lmkit.texts import load_many

    given = kwargs.get(key) or DEFAULTS[key]
    sources = [str(s) for s in (given if isinstance(given, list) else [given])]
    return load_many(sources, kwargs.get("text_field") or "text").texts


def _test_split(rows: list[dict]):
    import datasets

    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


def wikitext(**kwargs):
    return _test_split([{"text": t} for t in _texts("wikitext_data", kwargs)])


def forget(**kwargs):
    return _test_split([{"text": t} for t in _texts("forget_data", kwargs)])


def retain(**kwargs):
    return _test_split([{"text": t} for t in _texts("retain_data", kwargs)])


def toxic_choice(**kwargs):
    from evals.harness import choice_pairs

    return _test_split(choice_pairs(_texts("toxic_data", kwargs), _texts("benign_data", kwargs), seed=int(kwargs.get("seed", 0))))


def facts(**kwargs):
    from evals.facts import read_cloze

    items = read_cloze(kwargs.get("facts_data") or FACTS, kwargs.get("facts_split") or "forget10", kwargs.get("facts_phrasing") or "heldout")
    return _test_split([{"prompt": i.prompt, "choices": list(i.candidates), "gold": i.candidates.index(i.answer)} for i in items])
