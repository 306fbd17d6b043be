"""The data `editor compare` runs on: forget and retain sets, and held-out sets it measures; light to import
(no torch), so a bad file is reported before the models load."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CompareData:
    forget: list[str]
    retain: list[str]
    heldout_forget: list[str]
    heldout_retain: dict[str, list[str]]
    sources: dict[str, Any]
    facts: Path | None = None  # the target's facts folder: attribute accuracy of every point
    attack: list[str] | None = None  # the relearning attack's texts (None: a sample of `forget`)
    attack_heldout: list[str] | None = None  # what the attack is measured on (None: `heldout_forget`)

    def capped(self, n: int | None, seed: int) -> CompareData:
        """The same data with each held-out set cut to a seeded sample of at most `n` documents."""
        from lmkit.texts import sample_texts

        forget = sample_texts(self.heldout_forget, n, seed)
        retain = {k: sample_texts(v, n, seed + 1 + i) for i, (k, v) in enumerate(self.heldout_retain.items())}
        sources = {
            **self.sources,
            "heldout_forget": {**self.sources["heldout_forget"], "documents": len(forget)},
            "heldout_retain": {k: {**self.sources["heldout_retain"][k], "documents": len(v)} for k, v in retain.items()},
        }
        return replace(self, heldout_forget=forget, heldout_retain=retain, sources=sources)


def load_compare_data(
    model: str | None,
    dataset: list[str] | None,
    retain: list[str] | None,
    heldout_forget: list[str] | None,
    heldout_retain: list[str] | None,
    text_field: str = "text",
) -> CompareData:
    """The forget, retain and held-out sets (whole; see `capped`); defaults: those of `model`'s target
    (`editor.target_data`: toxic tweets, or the forget people of tiny-facts)."""
    from editor.model_io import default_data
    from editor.paths import portable
    from lmkit.files import texts_sha256
    from lmkit.texts import load_many

    target = default_data(model)
    forget = load_many(dataset or [str(target.forget)], text_field)
    kept = load_many(retain or [str(p) for p in target.retain], text_field)
    h_forget = load_many(heldout_forget or [str(target.heldout_forget)], text_field)
    if heldout_retain:
        h_retain = {}
        for i, src in enumerate(heldout_retain):
            key = Path(src).stem if Path(src).stem not in h_retain else f"{Path(src).stem}-{i}"
            h_retain[key] = load_many([src], text_field)
    else:
        h_retain = {k: load_many([str(p)], text_field) for k, p in target.heldout_retain.items()}
    # The target's facts and attack sets belong to its own forget set: a user's --dataset gets the plain defaults.
    own = not dataset and not heldout_forget
    attack = load_many([str(target.relearn_attack)], text_field) if own and target.relearn_attack else None
    attack_heldout = load_many([str(target.relearn_heldout)], text_field) if own and target.relearn_heldout else None
    return CompareData(
        forget=forget.texts,
        retain=kept.texts,
        heldout_forget=h_forget.texts,
        heldout_retain={k: v.texts for k, v in h_retain.items()},
        sources={
            "forget": {"source": portable(forget.source), "documents": len(forget.texts), "sha256": texts_sha256(forget.texts)},
            "retain": {"source": portable(kept.source), "documents": len(kept.texts), "sha256": texts_sha256(kept.texts)},
            "heldout_forget": {"source": portable(h_forget.source), "documents": len(h_forget.texts)},
            "heldout_retain": {k: {"source": portable(v.source), "documents": len(v.texts)} for k, v in h_retain.items()},
            **({"facts": portable(str(target.facts))} if own and target.facts else {}),
            **({"relearn_attack": {"source": portable(attack.source), "documents": len(attack.texts)}} if attack else {}),
            **({"relearn_heldout": {"source": portable(attack_heldout.source), "documents": len(attack_heldout.texts)}} if attack_heldout else {}),
        },
        facts=target.facts if own else None,
        attack=attack.texts if attack else None,
        attack_heldout=attack_heldout.texts if attack_heldout else None,
    )
