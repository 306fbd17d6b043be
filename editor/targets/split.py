"""Split the shipped public data once, reproducibly, into training and held-out parts.

Tweets are shuffled with a fixed seed and the first N held out; training rows whose text equals any
held-out tweet (the raw data has duplicates, some under both labels) are dropped. WikiText is split by whole
articles (every `wiki_heldout_every`-th article, in file order) so no held-out paragraph shares an
article with training text. Held-out parts are never trained on, by anything.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from editor.errors import EditorError
from lmkit.files import atomic_dir, check_replaceable, check_writable_parent
from lmkit.texts import read_jsonl, read_text_lines

# An article title in raw WikiText: " = Title = " (one '=' each side; sections use two or more).
_ARTICLE_TITLE = re.compile(r"^ = [^=].* = $")
SOURCE_FILES = ("tweets_toxic.jsonl", "tweets_benign.jsonl", "wikitext2_valid.txt", "wikitext2_test.txt", "README.md")


@dataclass(frozen=True)
class SplitSpec:
    seed: int = 0
    toxic_heldout: int = 1000
    benign_heldout: int = 500
    wiki_heldout_every: int = 10


def wiki_articles(lines: list[str]) -> list[list[str]]:
    articles: list[list[str]] = []
    for line in lines:
        if _ARTICLE_TITLE.match(line) or not articles:
            articles.append([])
        articles[-1].append(line.strip())
    return articles


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def split_data(source: Path, out: Path, spec: SplitSpec = SplitSpec(), force: bool = False) -> dict[str, int]:
    """Write out/train/* and out/heldout/* from the raw files in `source`; return row counts."""
    if not source.is_dir():
        raise EditorError(f"--source {source}: no such folder")
    missing = [name for name in SOURCE_FILES if not (source / name).is_file()]
    if missing:
        raise EditorError(f"--source {source}: missing source files: {', '.join(missing)}")
    check_replaceable(out, force)
    check_writable_parent(out)
    rng = random.Random(spec.seed)
    counts: dict[str, int] = {}
    parts: dict[str, tuple[list[str], list[str]]] = {}
    for name, n_heldout in (("toxic", spec.toxic_heldout), ("benign", spec.benign_heldout)):
        read_jsonl(source / f"tweets_{name}.jsonl")  # validates every row
        texts = read_text_lines(source / f"tweets_{name}.jsonl")  # raw rows keep the label field
        rng.shuffle(texts)
        parts[name] = (texts[n_heldout:], texts[:n_heldout])
    # Duplicated tweets must not leak a held-out text into training, within or across sources.
    held_texts = {json.loads(row)["text"] for _, held in parts.values() for row in held}
    parts = {name: ([row for row in train if json.loads(row)["text"] not in held_texts], held) for name, (train, held) in parts.items()}
    articles = wiki_articles(read_text_lines(source / "wikitext2_valid.txt") + read_text_lines(source / "wikitext2_test.txt"))
    wiki_train = [p for i, a in enumerate(articles) if i % spec.wiki_heldout_every for p in a]
    wiki_held = [p for i, a in enumerate(articles) if not i % spec.wiki_heldout_every for p in a]

    with atomic_dir(out, "split", force=force) as tmp:
        (tmp / "train").mkdir()
        (tmp / "heldout").mkdir()
        for name, (train, held) in parts.items():
            _write_lines(tmp / "train" / f"tweets_{name}.jsonl", train)
            _write_lines(tmp / "heldout" / f"tweets_{name}.jsonl", held)
            counts[f"train/{name}"], counts[f"heldout/{name}"] = len(train), len(held)
        _write_lines(tmp / "train" / "wikitext.txt", wiki_train)
        _write_lines(tmp / "heldout" / "wikitext.txt", wiki_held)
        counts["train/wikitext"], counts["heldout/wikitext"] = len(wiki_train), len(wiki_held)
        shutil.copyfile(source / "README.md", tmp / "SOURCES.md")
    return counts
