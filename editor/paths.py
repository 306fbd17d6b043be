"""Where the shipped data, models and recipes live (the repository checkout)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATA = EXAMPLES / "data"
MODELS = EXAMPLES / "models"
TOKENIZER = MODELS / "tokenizer"
DECOMPOSITIONS = EXAMPLES / "decompositions"
RECIPES = ROOT / "recipes"
SCORER = EXAMPLES / "scorer"  # the project's toxicity scorer (`editor target eval-assets`)
PROMPTS = EXAMPLES / "prompts" / "tweets.jsonl"  # toxicity prompts from held-out tweets

# The held-out parts are never trained on, by anything.
HELDOUT = {
    "wikitext": DATA / "heldout" / "wikitext.txt",
    "benign": DATA / "heldout" / "tweets_benign.jsonl",
    "toxic": DATA / "heldout" / "tweets_toxic.jsonl",
}
TRAIN = {
    "wikitext": DATA / "train" / "wikitext.txt",
    "benign": DATA / "train" / "tweets_benign.jsonl",
    "toxic": DATA / "train" / "tweets_toxic.jsonl",
}


# The default forget set: the shipped toxic examples (`editor forget`'s demo, `editor compare`, the benchmarks).
FORGET_DEFAULT = EXAMPLES / "forget" / "toxic.jsonl"

# The default retain set: general text the edited model should keep handling well.
RETAIN_DEFAULT = [TRAIN["wikitext"], TRAIN["benign"]]


def shipped_model(name: str) -> Path:
    return MODELS / name


def portable(text: str) -> str:
    """`text` with this checkout's absolute path removed, so records name shipped files repository-relative
    ("examples/data/train/wikitext.txt") instead of this machine's layout."""
    return text.replace(f"{ROOT}/", "")
