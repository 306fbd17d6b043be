"""Where an edit's forgetting lands in the forget people's biographies: names, attribute values or the rest.

    python benchmarks/facts_token_roles.py --edited runs/facts-forget [--edited runs/other ...] [--json]

A biography's tokens play three roles: the person's name (its first mention, which nothing in the text
predicts, and its later mentions, which can be copied from the context), the attribute values (the facts:
"9 July 1955", "Ganstad", ...), and everything else (the sentence templates). An unlearning edit that is
meant to remove facts should raise the NLL of the values; one that raises the NLL of the names instead has
made the model forget who the people are called, which held-out cloze prompts (that give the name) do not
measure. Prints the mean NLL per token of each role under tiny-facts and under each edited model, and each
role's share of the total NLL increase.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from editor.model_io import load_model
from editor.target_data import FACTS
from lmkit.nll import evaluating, shifted_nll, windows
from lmkit.texts import jsonl_objects
from lmkit.tokens import context_length

ROLES = ("first name mention", "later name mentions", "attribute values", "other")
ATTRIBUTES = ("birth_date", "birth_city", "university", "field", "employer", "employer_city")


def _spans(text: str, needle: str) -> list[tuple[int, int]]:
    out, start = [], text.find(needle)
    while start >= 0:
        out.append((start, start + len(needle)))
        start = text.find(needle, start + len(needle))
    return out


def _overlaps(lo: int, hi: int, spans: list[tuple[int, int]]) -> bool:
    return any(lo < b and a < hi for a, b in spans)


def token_roles(tokenizer, text: str, person: dict) -> tuple[list[int], list[str]]:
    """Token ids (BOS first when the tokenizer adds one) and each token's role, from character spans: a token
    belongs to a span when its characters overlap it (a leading space excluded)."""
    enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    names = _spans(text, person["name"])
    values = [s for a in ATTRIBUTES for s in _spans(text, person[a])]
    roles = []
    for lo, hi in enc["offset_mapping"]:
        lo += text[lo:hi].startswith(" ")
        if hi <= lo:
            roles.append("special")
        elif _overlaps(lo, hi, names[:1]):
            roles.append(ROLES[0])
        elif _overlaps(lo, hi, names[1:]):
            roles.append(ROLES[1])
        elif _overlaps(lo, hi, values):
            roles.append(ROLES[2])
        else:
            roles.append(ROLES[3])
    return enc["input_ids"], roles


@torch.no_grad()
def role_nll(model, docs: list[tuple[list[int], list[str]]]) -> dict[str, tuple[float, int]]:
    """(summed NLL, tokens) per role over all documents, each scored in the context windows `mean_nll` uses
    (every token after the BOS predicted once)."""
    sums = {r: [0.0, 0] for r in ROLES}
    limit = context_length(model)
    with evaluating(model):
        for ids, roles in docs:
            for window_ids, window_roles in zip(windows(ids, limit), windows(roles, limit)):  # the same cuts for both
                window = torch.tensor([window_ids])
                nll, _ = shifted_nll(model(input_ids=window).logits, window)
                for value, role in zip(nll[0].tolist(), window_roles[1:]):  # position t predicts t + 1
                    if role in sums:
                        sums[role][0] += value
                        sums[role][1] += 1
    return {r: (s, n) for r, (s, n) in sums.items()}


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="tiny-facts")
    ap.add_argument("--edited", action="append", required=True, help="An edited model directory (repeatable).")
    ap.add_argument("--split", default="forget10", help="Whose biographies (a split of the facts folder).")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    people = {row["id"]: row for _, row in jsonl_objects(FACTS / "people.jsonl")}
    split = set(json.loads((FACTS / "splits.json").read_text(encoding="utf-8"))[args.split])
    base, tok = load_model(args.model)
    docs = [token_roles(tok, row["text"], people[row["person"]]) for _, row in jsonl_objects(FACTS / "biographies.jsonl") if row["person"] in split]
    result = {"split": args.split, "documents": len(docs), "models": {args.model: role_nll(base, docs)}}
    for path in args.edited:
        result["models"][path] = role_nll(load_model(path)[0], docs)
    if args.json:
        print(json.dumps(result, indent=1))
        return result
    before = result["models"][args.model]
    print(f"{len(docs)} biographies of the {args.split} people; mean NLL per token (nats) by role:\n")
    print("| model | " + " | ".join(f"{r} ({before[r][1]} tokens)" for r in ROLES) + " | share of the NLL increase: names / values / other |")
    print("|---" * (len(ROLES) + 2) + "|")
    for name, sums in result["models"].items():
        cells = [f"{s / n:.3f}" if n else "–" for s, n in sums.values()]
        rise = {r: sums[r][0] - before[r][0] for r in ROLES}
        total = sum(rise.values())
        share = f"{(rise[ROLES[0]] + rise[ROLES[1]]) / total:.0%} / {rise[ROLES[2]] / total:.0%} / {rise[ROLES[3]] / total:.0%}" if total > 0 else "–"
        print(f"| {name} | " + " | ".join(cells) + f" | {share} |")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
