"""The data `editor compare` runs on: forget and retain sets, and held-out sets it measures; light to import
(no torch), so a bad file is reported before the models load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CompareData:
    forget: list[str]
    retain: list[str]
    heldout_forget: list[str]
    heldout_retain: dict[str, list[str]]
    sources: dict[str, Any]

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
        return CompareData(self.forget, self.retain, forget, retain, sources)


def load_compare_data(
    dataset: list[str] | None,
    retain: list[str] | None,
    heldout_forget: list[str] | None,
    heldout_retain: list[str] | None,
    text_field: str = "text",
) -> CompareData:
    """The forget, retain and held-out sets (whole; see `capped`); defaults: the shipped ones."""
    from editor.paths import FORGET_DEFAULT, HELDOUT, RETAIN_DEFAULT, portable
    from lmkit.files import texts_sha256
    from lmkit.texts import load_many

    forget = load_many(dataset or [str(FORGET_DEFAULT)], text_field)
    kept = load_many(retain or [str(p) for p in RETAIN_DEFAULT], text_field)
    h_forget = load_many(heldout_forget or [str(HELDOUT["toxic"])], text_field)
    if heldout_retain:
        h_retain = {}
        for i, src in enumerate(heldout_retain):
            key = Path(src).stem if Path(src).stem not in h_retain else f"{Path(src).stem}-{i}"
            h_retain[key] = load_many([src], text_field)
    else:
        h_retain = {"wikitext": load_many([str(HELDOUT["wikitext"])]), "benign": load_many([str(HELDOUT["benign"])])}
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
        },
    )
