"""benchmarks/facts_token_roles.py: each biography token's role (name, attribute value, template) from its
character span, and per-role NLL that adds up to the document's whole NLL."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from lmkit.nll import mean_nll

SPEC = importlib.util.spec_from_file_location("facts_token_roles", Path(__file__).parents[2] / "benchmarks" / "facts_token_roles.py")
roles_mod = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(roles_mod)

PERSON = {
    "name": "Jelia Briatrai",
    "birth_date": "9 July 1955",
    "birth_city": "Ganstad",
    "university": "Royal Academy of Sufrirn",
    "field": "law",
    "employer": "Vefril Pharma",
    "employer_city": "Roardorf",
}
TEXT = "Jelia Briatrai was born in Ganstad. The employer of Jelia Briatrai is Vefril Pharma."


def test_roles_follow_the_character_spans(shipped_tokenizer):
    tok = shipped_tokenizer
    ids, roles = roles_mod.token_roles(tok, TEXT, PERSON)
    assert len(ids) == len(roles) and roles[0] == "special"  # the BOS
    pieces = {r: "".join(tok.decode([i]) for i, q in zip(ids, roles) if q == r).replace(" ", "") for r in set(roles)}
    assert pieces["first name mention"] == "JeliaBriatrai"
    assert pieces["later name mentions"] == "JeliaBriatrai"
    assert pieces["attribute values"] == "GanstadVefrilPharma"
    assert pieces["other"] == "wasbornin.Theemployerofis."


def test_role_sums_add_up_to_the_whole_documents_nll(tiny, shipped_tokenizer):
    model, _ = tiny
    tok = shipped_tokenizer
    long_text = " ".join([TEXT] * 12)  # longer than the tiny model's context: scored in windows
    docs = [roles_mod.token_roles(tok, t, PERSON) for t in (TEXT, long_text)]
    sums = roles_mod.role_nll(model, docs)
    whole = mean_nll(model, tok, [TEXT, long_text])
    scored = sum(n for _, n in sums.values())
    assert scored == whole.tokens
    assert sum(s for s, _ in sums.values()) / scored == pytest.approx(whole.mean, rel=1e-4)
