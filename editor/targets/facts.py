"""Fictitious people with six attributes each, their biographies, held-out paraphrases and cloze prompts.

Deterministic given the spec (its seed included). The people are split once: `unseen` people are never
trained on by anything (their accuracy is the chance level); of the trained people, a seeded permutation's
first 10% are `forget10` and its first 1% `forget01` (so forget01 ⊂ forget10), the rest `retain`. For
the relearning attack, forget10 is cut in two: `relearn` (10% of it, from its end, so outside forget01
when forget10 has 10 people or more), whose biographies the attacker fine-tunes on, and `relearn_eval`.

Files written by `write_facts` (JSONL unless noted):
  people.jsonl      {"id", "name", <attribute>: value, ...} for every person, unseen ones included
  pools.json        {attribute: [every value of the pool]}, the candidates of each cloze prompt
  splits.json       {"forget10", "forget01", "retain", "unseen", "relearn", "relearn_eval": [person ids]}
  biographies.jsonl {"text", "person"}: training biographies of every trained person
  forget10.jsonl, forget01.jsonl, retain.jsonl, relearn.jsonl: the biographies of those people only
  heldout.jsonl     {"text", "person", "attribute"}: held-out paraphrases, never in any training text
  heldout-<split>.jsonl  the same, of one split's people (forget10, forget01, retain, unseen, relearn_eval): the
                    held-out forget and retain sets of `editor compare` and `editor eval` on tiny-facts
  cloze.jsonl       {"person", "attribute", "phrasing", "prompt", "answer"}: phrasing "heldout" (a held-out
                    template) or "train" (the first training template), the answer following the prompt after a space
  spec.json         the FactsSpec that made them
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from editor.errors import EditorError
from editor.targets import facts_text as words
from lmkit.files import atomic_dir, check_replaceable, check_writable_parent

ATTRIBUTES = words.ATTRIBUTES
SPLITS = ("forget10", "forget01", "retain", "unseen", "relearn", "relearn_eval")
HELDOUT_SPLITS = ("forget10", "forget01", "retain", "unseen", "relearn_eval")  # held-out paraphrase files per split


@dataclass(frozen=True)
class FactsSpec:
    seed: int = 0
    people: int = 200  # trained people (TOFU has 200 authors)
    unseen: int = 50  # people no model trains on: the chance level
    bios_per_person: int = 8  # training biographies per person: each uses every attribute's k-th paraphrase (8 of them), sentences shuffled
    cities: int = 60  # pool sizes; a value can be shared by several people
    universities: int = 40
    employers: int = 80
    dates: int = 120

    def check(self) -> None:
        if self.people < 10:
            raise EditorError(f"--people {self.people}: at least 10, so the 10% forget split is not empty")
        small = {k: v for k, v in asdict(self).items() if k in ("unseen", "bios_per_person", "cities", "universities", "employers", "dates") and v < 1}
        if small:
            raise EditorError(f"facts spec: {', '.join(small)} must be at least 1")
        if self.cities + self.universities + self.employers > 2000:
            raise EditorError("facts spec: at most 2000 place names in all (cities + universities + employers)")


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class Facts:
    spec: FactsSpec
    people: list[Person]
    pools: dict[str, list[str]]
    splits: dict[str, list[int]]


def _word(rng: random.Random, onsets, vowels, codas, syllables: int) -> str:
    """Open syllables, the last one closed by a coda (which may be empty)."""
    return "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(syllables)) + rng.choice(codas)


def _unique(rng: random.Random, n: int, make, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        w = make(rng)
        if w not in taken:
            taken.add(w)
            out.append(w)
    return out


def _place(rng: random.Random) -> str:
    stem = _word(rng, words.PLACE_ONSETS, words.PLACE_VOWELS, words.PLACE_CODAS, rng.choice((1, 2)))
    return (stem + rng.choice(words.PLACE_ENDINGS)).capitalize()


def _stem(rng: random.Random) -> str:
    return _word(rng, words.PLACE_ONSETS, words.PLACE_VOWELS, words.PLACE_CODAS, 2).capitalize()


def _person_name(rng: random.Random) -> str:
    first = _word(rng, words.NAME_ONSETS, words.NAME_VOWELS, ("",), 2)
    last = _word(rng, words.NAME_ONSETS, words.NAME_VOWELS, words.NAME_CODAS, 2)
    return f"{first.capitalize()} {last.capitalize()}"


def _date(rng: random.Random) -> str:
    return f"{rng.randint(1, 28)} {rng.choice(words.MONTHS)} {rng.randint(1940, 1999)}"


def make_pools(spec: FactsSpec, rng: random.Random) -> dict[str, list[str]]:
    taken: set[str] = set()
    cities = _unique(rng, spec.cities, _place, taken)
    universities = [rng.choice(words.UNIVERSITY_FORMS).format(s) for s in _unique(rng, spec.universities, _stem, taken)]
    employers = [rng.choice(words.EMPLOYER_FORMS).format(s) for s in _unique(rng, spec.employers, _stem, taken)]
    dates = _unique(rng, spec.dates, _date, set())
    return {
        "birth_date": dates,
        "birth_city": cities,
        "university": universities,
        "field": list(words.FIELDS),
        "employer": employers,
        "employer_city": cities,
    }


def generate(spec: FactsSpec = FactsSpec()) -> Facts:
    """The people, their attribute pools and the splits; same spec → same result."""
    spec.check()
    rng = random.Random(f"facts-{spec.seed}")
    pools = make_pools(spec, rng)
    taken = {v for pool in pools.values() for v in pool}
    names: list[str] = []
    while len(names) < spec.people + spec.unseen:
        name = _person_name(rng)
        # No name inside another ("Hika Lode" in "Shika Lode"), so a name in a text names one person.
        if name not in taken and not any(name in other or other in name for other in names):
            taken.add(name)
            names.append(name)
    people = [Person(i, name, {a: rng.choice(pools[a]) for a in ATTRIBUTES}) for i, name in enumerate(names)]
    order = list(range(spec.people))
    rng.shuffle(order)
    n10 = max(1, round(0.10 * spec.people))
    n01 = max(1, round(0.01 * spec.people))
    n_relearn = max(1, round(0.10 * n10))
    splits = {
        "forget10": sorted(order[:n10]),
        "forget01": sorted(order[:n01]),
        "retain": sorted(order[n10:]),
        "unseen": list(range(spec.people, spec.people + spec.unseen)),
        "relearn": sorted(order[n10 - n_relearn : n10]),  # the attack fine-tunes on these forget people...
        "relearn_eval": sorted(order[: n10 - n_relearn]),  # ...and is measured on the others
    }
    return Facts(spec, people, pools, splits)


def sentence(template: str, person: Person, attribute: str) -> str:
    return template.format(name=person.name, value=person.attributes[attribute])


def biographies(person: Person, n: int, seed: int) -> list[str]:
    """`n` biographies of one person: every attribute once each, paraphrases rotating, sentence order shuffled."""
    rng = random.Random(f"bio-{seed}-{person.id}")
    offsets = {a: rng.randrange(len(words.TRAIN_TEMPLATES[a])) for a in ATTRIBUTES}
    bios = []
    for k in range(n):
        sentences = [sentence(words.TRAIN_TEMPLATES[a][(offsets[a] + k) % len(words.TRAIN_TEMPLATES[a])], person, a) for a in ATTRIBUTES]
        rng.shuffle(sentences)
        bios.append(" ".join(sentences))
    return bios


def cloze(template: str, person: Person, attribute: str) -> tuple[str, str]:
    """(prompt, answer) of a template that ends with "{value}." : the prompt stops before the space."""
    head, tail = template.split("{value}")
    if tail not in ("", ".") or not head.endswith(" "):
        raise ValueError(f"not a cloze template (the value must end it): {template!r}")
    return head.format(name=person.name).rstrip(" "), person.attributes[attribute]


def cloze_records(facts: Facts) -> list[dict]:
    rows = []
    for p in facts.people:
        for a in ATTRIBUTES:
            phrasings = [("train", words.TRAIN_TEMPLATES[a][0])] + [("heldout", t) for t in words.HELDOUT_TEMPLATES[a]]
            for phrasing, template in phrasings:
                prompt, answer = cloze(template, p, a)
                rows.append({"person": p.id, "attribute": a, "phrasing": phrasing, "prompt": prompt, "answer": answer})
    return rows


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_facts(out: Path, spec: FactsSpec = FactsSpec(), force: bool = False) -> dict[str, int]:
    """Write the files listed in the module docstring into `out` (atomically); return row counts per file."""
    spec.check()
    check_replaceable(out, force)
    check_writable_parent(out)
    facts = generate(spec)
    bios = {p.id: biographies(p, spec.bios_per_person, spec.seed) for p in facts.people[: spec.people]}

    heldout = [{"text": sentence(t, p, a), "person": p.id, "attribute": a} for p in facts.people for a in ATTRIBUTES for t in words.HELDOUT_TEMPLATES[a]]

    def bio_rows(ids: list[int]) -> list[dict]:
        return [{"text": t, "person": i} for i in ids for t in bios[i]]

    def heldout_rows(ids: list[int]) -> list[dict]:
        people = set(ids)
        return [r for r in heldout if r["person"] in people]

    files: dict[str, list[dict]] = {
        "people.jsonl": [{"id": p.id, "name": p.name, **p.attributes} for p in facts.people],
        "biographies.jsonl": bio_rows(sorted(bios)),
        "forget10.jsonl": bio_rows(facts.splits["forget10"]),
        "forget01.jsonl": bio_rows(facts.splits["forget01"]),
        "retain.jsonl": bio_rows(facts.splits["retain"]),
        "relearn.jsonl": bio_rows(facts.splits["relearn"]),
        "heldout.jsonl": heldout,
        **{f"heldout-{s}.jsonl": heldout_rows(facts.splits[s]) for s in HELDOUT_SPLITS},
        "cloze.jsonl": cloze_records(facts),
    }
    with atomic_dir(out, "facts", force=force) as tmp:
        for name, rows in files.items():
            _write_jsonl(tmp / name, rows)
        (tmp / "pools.json").write_text(json.dumps(facts.pools, indent=1, ensure_ascii=False), encoding="utf-8")
        (tmp / "splits.json").write_text(json.dumps(facts.splits), encoding="utf-8")
        (tmp / "spec.json").write_text(json.dumps(asdict(spec), indent=1), encoding="utf-8")
    return {name: len(rows) for name, rows in files.items()}
