"""The default data of each shipped target: what to forget and keep, what to measure on, and its oracle.

`editor forget`, `editor eval` and `editor compare` take their defaults from here, so `--model tiny-facts`
forgets the 10% forget people and measures on their held-out paraphrases, as `--model tiny-toxic` (and any
model that is not a shipped target) forgets toxic tweets; `editor decompose` trains on the target's text. Light to import: paths only, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from editor.errors import EditorError
from editor.paths import DATA, EXAMPLES, FORGET_DEFAULT, HELDOUT, RETAIN_DEFAULT, TRAIN

if TYPE_CHECKING:
    from evals.suite import EvalData
    from lmkit.texts import TextDataset

FACTS = DATA / "facts"  # `editor target facts --out examples/data/facts --people 200 --seed 0`


@dataclass(frozen=True)
class TargetData:
    forget: Path  # the forget set of `editor forget` / `editor compare`
    retain: tuple[Path, ...]  # what the edit must keep (training data of the target)
    heldout_forget: Path  # held-out forget-like data, never trained on
    heldout_retain: dict[str, Path]  # held-out retain sets, each measured on its own; "wikitext" always
    oracle: str | None  # the shipped model never trained on the forget set
    train: tuple[Path, ...]  # the target's training text: `editor decompose`'s default data
    facts: Path | None = None  # an `editor target facts` folder: attribute accuracy in `editor eval` and `editor compare`
    # The relearning attack's fine-tuning texts and what it is measured on (default: a sample of the forget set,
    # measured on the held-out forget set); tiny-facts attacks 10% of the forget people and measures the others.
    relearn_attack: Path | None = None
    relearn_heldout: Path | None = None
    models: tuple[str, ...] = field(default=())  # the shipped models this data belongs to

    @property
    def heldout_retain_other(self) -> Path:
        """The held-out retain set besides WikiText (`editor eval`'s retain NLL)."""
        return next(p for k, p in self.heldout_retain.items() if k != "wikitext")


TOXIC = TargetData(
    forget=FORGET_DEFAULT,
    retain=tuple(RETAIN_DEFAULT),
    heldout_forget=HELDOUT["toxic"],
    heldout_retain={"wikitext": HELDOUT["wikitext"], "benign": HELDOUT["benign"]},
    oracle="tiny-clean",
    train=tuple(TRAIN.values()),
    models=("tiny-toxic", "tiny-clean"),
)
FACTS_TARGET = TargetData(
    forget=EXAMPLES / "forget" / "facts.jsonl",
    retain=(TRAIN["wikitext"], FACTS / "retain.jsonl"),
    heldout_forget=FACTS / "heldout-forget10.jsonl",
    heldout_retain={"wikitext": HELDOUT["wikitext"], "people": FACTS / "heldout-retain.jsonl"},
    oracle="tiny-facts-retain",
    train=(TRAIN["wikitext"], FACTS / "biographies.jsonl"),
    facts=FACTS,
    relearn_attack=FACTS / "relearn.jsonl",
    relearn_heldout=FACTS / "heldout-relearn_eval.jsonl",
    models=("tiny-facts", "tiny-facts-retain"),
)
TARGETS = (TOXIC, FACTS_TARGET)


def target_data(shipped: str | None) -> TargetData:
    """The data of a shipped model's target (`editor.model_io.shipped_name`); the toxic one for any other model."""
    return next((t for t in TARGETS if shipped in t.models), TOXIC)


def oracle_of(shipped: str | None) -> str | None:
    """The oracle of a shipped target model (None for an oracle itself and for any other model)."""
    t = target_data(shipped)
    return t.oracle if shipped in t.models and shipped != t.oracle else None


def check_facts_folder(folder: Path, option: str = "--facts") -> Path:
    """`folder` if `editor target facts` wrote it (cloze prompts, pools, splits), else one clear error."""
    if not all((folder / f).is_file() for f in ("cloze.jsonl", "pools.json", "splits.json")):
        raise EditorError(f"{option} {folder}: not a facts folder (cloze.jsonl, pools.json, splits.json); write one with `editor target facts`")
    return folder


def eval_data(forget: TextDataset, retain: TextDataset) -> EvalData:
    """What `editor eval` reads (`api.evaluate`, `--write-tasks`): `forget` and `retain`, the held-out WikiText,
    and the held-out toxic and benign tweets the toxic-choice task pairs, whatever the target."""
    from evals.suite import EvalData
    from lmkit.texts import load_texts

    held = {k: load_texts(HELDOUT[k]).texts for k in ("wikitext", "toxic", "benign")}
    return EvalData(
        forget=forget.texts,
        retain=retain.texts,
        wikitext=held["wikitext"],
        choice_toxic=held["toxic"],
        choice_benign=held["benign"],
        sources={
            "forget": forget.source,
            "retain": retain.source,
            "wikitext": str(HELDOUT["wikitext"]),
            "toxic_choice": f"pairs of {HELDOUT['toxic']} and {HELDOUT['benign']}",
        },
    )
