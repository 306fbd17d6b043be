"""One method's whole forget/retain trade-off on the shipped default, on held-out data.

    python benchmarks/forget_frontier.py [--method vpd-write] [--decomposition DIR] [--set key=value ...] [--split validation] [--json]

Runs the method once for a dense grid of strengths (for the VPD kinds, retain budgets from 0.005 to 2 nats:
one run explores one curve and every budget reads a point off it; for the gradient baselines, step counts;
for the task vector, α), measures every distinct edit on the held-out sets, and prints the points and the
harness's reading (`evals.frontier`: gap closed at 0.5/1/2% mean retain damage and at the oracle's damage,
retrain-equivalence), the same reading `editor compare` prints. `--split validation` scores on training tweets
outside the forget set instead (`heldout.validation_texts`): the split the defaults were chosen on.
"""

from __future__ import annotations

import argparse
import json
import sys

from heldout import SPLITS, Heldout, print_table

from decompose.io import load_decomposition
from editor.forget import method_settings
from editor.methods import get_method
from editor.methods.base import ForgetInputs, Progress
from editor.model_io import load_model
from editor.paths import DECOMPOSITIONS, FORGET_DEFAULT, RETAIN_DEFAULT
from evals.frontier import Scored, reading
from lmkit.texts import load_texts

GRIDS = {
    "max_retain_kl": [round(0.005 * 1.4**i, 5) for i in range(18)],
    "steps": [5, 10, 15, 20, 25, 30, 35, 40, 50, 60],
    "alpha": [0.5, 1.0, 1.5, 2.0, 3.0, 4.0],
}


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="vpd")
    ap.add_argument("--decomposition", default=str(DECOMPOSITIONS / "tiny-toxic"), help="a decomposition of tiny-toxic (VPD kinds)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="method setting override, key=value")
    ap.add_argument("--split", choices=SPLITS, default="heldout", help="score on the held-out sets, or on the validation split (choosing defaults)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    method = get_method(args.method)
    model, tok = load_model("tiny-toxic")
    dec = load_decomposition(model, args.decomposition) if method.needs_decomposition else None
    forget = load_texts(FORGET_DEFAULT).texts
    retain = [t for p in RETAIN_DEFAULT for t in load_texts(p).texts]
    grid = GRIDS[method.strength]
    settings = method_settings(method, None, args.sets)
    edits = method.run(ForgetInputs(model, tok, forget, retain, dec), settings, grid, Progress())
    heldout = Heldout(model, tok, args.split)
    rows, seen = [], set()
    for strength in grid:
        edit = edits.get(strength)
        if edit is None:
            continue
        search = edit.log.get("search")
        key = search["final"]["at"] if search else strength
        if key in seen:  # several budgets can pick the same point of one curve
            continue
        seen.add(key)
        applied = edit.apply(model)
        try:
            score = heldout.score(model)
        finally:
            applied.revert()
        rows.append({"strength": strength, "at": key, "summary": edit.summary, **score})
    o, b = heldout.oracle, heldout.base
    retain_keys = ("wikitext", "benign")
    points = [
        Scored(
            r["heldout"]["toxic"],
            {k: r["heldout"][k] for k in retain_keys},
            b["toxic"],
            {k: b[k] for k in retain_keys},
            o["toxic"],
            {k: o[k] for k in retain_keys},
        )
        for r in rows
    ]
    result = {"method": method.name, "split": args.split, "settings": settings.model_dump(mode="json"), "points": rows, "reading": reading(points)}
    if args.json:
        print(json.dumps(result, indent=1))
        return result
    print(f"{method.name}: {len(rows)} distinct edits, strength {method.strength}")
    print_table(heldout, [method.strength, "edit"], [([f"{r['strength']:g}", r["summary"]], r) for r in rows])
    print("\n" + " | ".join(f"{k}: {'–' if v is None else f'{v:.1%}'}" for k, v in result["reading"].items()))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
