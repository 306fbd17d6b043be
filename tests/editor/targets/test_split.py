"""editor.targets.split: a deterministic, leak-free train / held-out split (synthetic and shipped data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from editor.errors import EditorError
from editor.targets.split import SOURCE_FILES, SplitSpec, split_data, wiki_articles

SPEC = SplitSpec(seed=3, toxic_heldout=4, benign_heldout=3, wiki_heldout_every=3)


def _tweets(path: Path, prefix: str, label: str, n: int, extra: list[str] = ()) -> None:
    rows = [{"text": f"{prefix} tweet number {i}", "label": label} for i in range(n)]
    rows += [{"text": t, "label": label} for t in extra]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _wiki(path: Path, first: int, n_articles: int) -> None:
    lines = []
    for a in range(first, first + n_articles):
        lines += [
            f" = Article {a} = ",
            "",
            f" Article {a} opening paragraph, long enough to be a real paragraph of text . ",
            "",
            " = = Section = = ",
            f" Article {a} second paragraph , also long enough to be distinct from the others . ",
            "",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def source(tmp_path) -> Path:
    src = tmp_path / "raw"
    src.mkdir()
    # Duplicates (within a source and across sources) must never leak a held-out text into training.
    dups = ["shared duplicate text"] * 3
    _tweets(src / "tweets_toxic.jsonl", "toxic", "offensive", 20, extra=dups)
    _tweets(src / "tweets_benign.jsonl", "benign", "neither", 12, extra=dups[:1])
    _wiki(src / "wikitext2_valid.txt", 0, 5)
    _wiki(src / "wikitext2_test.txt", 5, 4)
    (src / "README.md").write_text("# sources\n", encoding="utf-8")
    return src


def _texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_counts(source, tmp_path):
    out = tmp_path / "data"
    counts = split_data(source, out, SPEC)
    assert sorted(_files(out)) == [
        ".editor-output",
        "SOURCES.md",
        "heldout/tweets_benign.jsonl",
        "heldout/tweets_toxic.jsonl",
        "heldout/wikitext.txt",
        "train/tweets_benign.jsonl",
        "train/tweets_toxic.jsonl",
        "train/wikitext.txt",
    ]
    assert (out / "SOURCES.md").read_text() == "# sources\n"
    assert counts["heldout/toxic"] == 4 and counts["heldout/benign"] == 3
    for key, n in counts.items():
        part, name = key.split("/")
        fname = "wikitext.txt" if name == "wikitext" else f"tweets_{name}.jsonl"
        assert len(_lines(out / part / fname)) == n, key
    assert not list(tmp_path.glob("*.tmp-split"))


def test_deterministic(source, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert split_data(source, a, SPEC) == split_data(source, b, SPEC)
    assert _files(a) == _files(b)
    c = tmp_path / "c"
    split_data(source, c, SplitSpec(seed=4, toxic_heldout=4, benign_heldout=3, wiki_heldout_every=3))
    assert _files(c) != _files(a), "the seed should change the tweet split"


def test_rerun_replaces_its_own_output_only(source, tmp_path):
    out = tmp_path / "data"
    split_data(source, out, SPEC)
    first = _files(out)
    with pytest.raises(EditorError, match="already exists; pass --force"):
        split_data(source, out, SPEC)
    split_data(source, out, SPEC, force=True)
    assert _files(out) == first
    (out / "stale.txt").write_text("old")  # not ours: --force must not delete it
    with pytest.raises(EditorError, match="holds files editor did not write"):
        split_data(source, out, SPEC, force=True)
    assert (out / "stale.txt").read_text() == "old"


def test_tweets_disjoint_and_complete(source, tmp_path):
    out = tmp_path / "data"
    split_data(source, out, SPEC)
    all_train = set(_texts(out / "train/tweets_toxic.jsonl")) | set(_texts(out / "train/tweets_benign.jsonl"))
    all_held = set(_texts(out / "heldout/tweets_toxic.jsonl")) | set(_texts(out / "heldout/tweets_benign.jsonl"))
    assert not all_train & all_held
    for name in ("toxic", "benign"):
        raw = set(_texts(source / f"tweets_{name}.jsonl"))
        train, held = _texts(out / f"train/tweets_{name}.jsonl"), _texts(out / f"heldout/tweets_{name}.jsonl")
        # every raw text ends up somewhere; only held-out duplicates are dropped from train
        assert set(train) | set(held) == raw


def test_duplicate_heldout_text_removed_from_train(tmp_path):
    src = tmp_path / "raw"
    src.mkdir()
    # Every tweet is the same text: whichever rows are held out, none may stay in training.
    _tweets(src / "tweets_toxic.jsonl", "t", "hate", 0, extra=["same"] * 6)
    _tweets(src / "tweets_benign.jsonl", "b", "neither", 5, extra=["same"])
    _wiki(src / "wikitext2_valid.txt", 0, 2)
    _wiki(src / "wikitext2_test.txt", 2, 2)
    (src / "README.md").write_text("x")
    out = tmp_path / "data"
    counts = split_data(src, out, SplitSpec(toxic_heldout=2, benign_heldout=1, wiki_heldout_every=2))
    assert counts["train/toxic"] == 0 and counts["heldout/toxic"] == 2
    assert "same" not in _texts(out / "train/tweets_benign.jsonl")


def test_labels_kept(source, tmp_path):
    out = tmp_path / "data"
    split_data(source, out, SPEC)
    for part in ("train", "heldout"):
        for name, label in (("toxic", "offensive"), ("benign", "neither")):
            rows = [json.loads(line) for line in _lines(out / part / f"tweets_{name}.jsonl")]
            assert rows and all(set(r) == {"text", "label"} and r["label"] == label for r in rows)


def test_wiki_split_by_whole_articles(source, tmp_path):
    out = tmp_path / "data"
    split_data(source, out, SPEC)
    train, held = _lines(out / "train/wikitext.txt"), _lines(out / "heldout/wikitext.txt")

    def article_ids(lines: list[str]) -> set[int]:
        return {int(line.split()[1]) for line in lines if line.startswith("Article")}

    def titles(lines: list[str]) -> set[int]:
        return {int(line.split()[2]) for line in lines if line.startswith("= Article")}

    # 9 articles over both files, every 3rd (0, 3, 6) held out, each with its title and both paragraphs
    assert titles(held) == article_ids(held) == {0, 3, 6}
    assert titles(train) == article_ids(train) == {1, 2, 4, 5, 7, 8}
    assert sum(line.startswith("Article") for line in held) == 6
    assert sum(line.startswith("Article") for line in train) == 12
    # lines are stripped, blank lines dropped; section headers stay with their article
    assert all(line == line.strip() and line for line in train + held)
    assert held.count("= = Section = =") == 3


def test_wiki_articles_titles_vs_sections():
    lines = [" = A = ", "a1", " = = Sec = = ", "a2", " = B = ", "b1"]
    assert wiki_articles(lines) == [["= A =", "a1", "= = Sec = =", "a2"], ["= B =", "b1"]]
    assert wiki_articles(["preamble", " = A = ", "x"]) == [["preamble"], ["= A =", "x"]]


@pytest.mark.parametrize("missing", SOURCE_FILES)
def test_missing_source_file(source, tmp_path, missing):
    (source / missing).unlink()
    out = tmp_path / "data"
    with pytest.raises(EditorError) as e:
        split_data(source, out, SPEC)
    assert str(e.value) == f"--source {source}: missing source files: {missing}"
    assert not out.exists()


def test_missing_source_dir(tmp_path):
    with pytest.raises(EditorError, match="--source .*/nope: no such folder"):
        split_data(tmp_path / "nope", tmp_path / "data", SPEC)
    assert not (tmp_path / "data").exists()


def test_malformed_tweet_row_is_an_editor_error(source, tmp_path):
    with (source / "tweets_benign.jsonl").open("a") as f:
        f.write('{"label": "neither"}\n')
    with pytest.raises(EditorError, match=r"tweets_benign.jsonl:14: row has no 'text' field"):
        split_data(source, tmp_path / "data", SPEC)
    assert not (tmp_path / "data").exists()


# --- the shipped split -----------------------------------------------------------------------------


def test_shipped_split_heldout_tweets_not_in_train():
    from editor.paths import HELDOUT, TRAIN

    train = {t for name in ("toxic", "benign") for t in _texts(TRAIN[name])}
    held = {t for name in ("toxic", "benign") for t in _texts(HELDOUT[name])}
    assert len(held) > 1000
    n_leaked = len(train & held)  # a count only: the texts are abusive
    assert n_leaked == 0, f"{n_leaked} held-out tweet texts also appear in the shipped training files (re-run `editor target split`)"


def test_shipped_split_heldout_wiki_not_in_train():
    from editor.paths import HELDOUT, TRAIN

    train = set(_lines(TRAIN["wikitext"]))
    held = {p for p in _lines(HELDOUT["wikitext"]) if len(p) > 50}
    assert len(held) > 100
    assert not train & held


def test_shipped_split_sizes():
    from editor.paths import HELDOUT

    spec = SplitSpec()
    assert len(_lines(HELDOUT["toxic"])) == spec.toxic_heldout
    assert len(_lines(HELDOUT["benign"])) == spec.benign_heldout
