"""The forget/retain trade-off of `editor forget` on the shipped default, on held-out data.

    python benchmarks/forget_frontier.py [--decomposition DIR] [--set key=value ...] [--json]

Runs the selection once with no retain budget (every prefix of the relaxed-removal ranking is
checked), then measures held-out WikiText, benign and toxic NLL with each checked prefix removed:
which budget buys how much forgetting, measured on data never used for training or selection.
"""

from __future__ import annotations

import argparse
import json
import sys

from heldout import Heldout, print_table

from decompose.io import load_decomposition
from editor.apply import ComponentRef, apply_delta, removal_delta
from editor.forget import parse_sets
from editor.methods.base import ForgetInputs, Progress
from editor.methods.vpd import VpdSettings, vpd_run
from editor.model_io import load_model
from editor.paths import DECOMPOSITIONS, EXAMPLES, RETAIN_DEFAULT
from lmkit.texts import load_texts


def main(argv: list[str]) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", dest="sets", action="append", default=[], help="VpdSettings override, key=value")
    ap.add_argument("--decomposition", default=str(DECOMPOSITIONS / "tiny-toxic"), help="a decomposition of tiny-toxic")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    model, tok = load_model("tiny-toxic")
    dec = load_decomposition(model, args.decomposition)
    forget = load_texts(EXAMPLES / "forget" / "toxic.jsonl").texts
    retain = [t for p in RETAIN_DEFAULT for t in load_texts(p).texts]
    settings = VpdSettings(**{"curve_points": 12, **parse_sets(args.sets), "max_retain_kl": 1e9, "max_components": None})
    edit = vpd_run(ForgetInputs(model, tok, forget, retain, dec), settings, [1e9], Progress())[1e9]
    search = edit.log["search"]
    heldout = Heldout(model, tok)
    rows = []
    for point in [search["base"], *search["curve"]]:
        removed = [ComponentRef(c.module, c.index) for c in edit.components[: point["removed"]]]
        step = apply_delta(dec.cm.targets, removal_delta(dec.cm, removed))
        try:
            rows.append({**point, **heldout.score(model)})
        finally:
            step.revert()
    if args.json:
        print(json.dumps(rows, indent=1))
        return rows
    columns = ["removed", "retain KL (selection data)", "held-out toxic NLL"]
    print_table(heldout, columns, [([str(r["removed"]), f"{r['retain_kl']:.4f}", f"{r['heldout']['toxic']:.3f}"], r) for r in rows])
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
