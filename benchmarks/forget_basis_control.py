"""Is it the decomposition? The default edit (vpd-write) on VPD's components against the same edit on a basis
that knows nothing of how the model computes: the singular vectors of each matrix.

    python benchmarks/forget_basis_control.py [--basis vpd|svd|both] [--set key=value ...] [--json]

Both arms run exactly `editor.refit` with the vpd-write settings (output-side selection of `components`
rank-1 pieces, learned new write vectors, capped forget loss minus retain_weight × retain KL), on the same
selection data, and measure every snapshot on the held-out sets. The only differences: the VPD arm's pieces
are the decomposition's components (and its candidates must be used more on the forget set, by their causal
importance); the SVD arm's pieces are σ_i u_i v_iᵀ of each matrix, every one a candidate. If the two curves
coincide, the forgetting comes from the objective, not from the decomposition.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace

import torch
from heldout import Heldout, print_table

from decompose.io import load_decomposition
from editor.apply import apply_delta, factor_delta
from editor.forget import method_settings
from editor.methods import get_method
from editor.methods.base import ForgetInputs, Progress
from editor.methods.vpd import prepare
from editor.methods.vpd_refit import select_output_side
from editor.model_io import load_model
from editor.paths import DECOMPOSITIONS, FORGET_DEFAULT, RETAIN_DEFAULT
from editor.refit import Refit, train_refit
from editor.select import Candidate
from lmkit.texts import load_texts


@dataclass
class Pieces:
    U: torch.Tensor  # (C, d_out)
    V: torch.Tensor  # (d_in, C)


class SvdBasis:
    """A stand-in for a decomposition's component model: each matrix as the sum of its SVD's rank-1 pieces."""

    def __init__(self, cm):
        self.model, self.targets, self.names = cm.model, cm.targets, cm.names
        self.pieces = {}
        for n in self.names:
            u, s, vh = torch.linalg.svd(cm.targets[n].weight().detach().double(), full_matrices=False)
            self.pieces[n] = Pieces((u * s).T.float().contiguous(), vh.T.float().contiguous())

    def comp(self, name: str) -> Pieces:
        return self.pieces[name]

    def C(self, name: str) -> int:
        return self.pieces[name].U.shape[0]


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--basis", choices=["vpd", "svd", "both"], default="both")
    ap.add_argument("--decomposition", default=str(DECOMPOSITIONS / "tiny-toxic"))
    ap.add_argument("--set", dest="sets", action="append", default=[], help="vpd-write setting override, key=value")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    model, tok = load_model("tiny-toxic")
    dec = load_decomposition(model, args.decomposition)
    forget = load_texts(FORGET_DEFAULT).texts
    retain = [t for p in RETAIN_DEFAULT for t in load_texts(p).texts]
    s = method_settings(get_method("vpd-write"), None, args.sets)
    prep = prepare(ForgetInputs(model, tok, forget, retain, dec), s, Progress())
    heldout = Heldout(model, tok)
    out: dict[str, list[dict]] = {}
    arms = ["vpd", "svd"] if args.basis == "both" else [args.basis]
    for arm in arms:
        arm_prep = prep
        if arm == "svd":
            basis = SvdBasis(dec.cm)
            every_piece = [Candidate(n, c, 0.0, 0.0, 0.0, 0.0, 0.0) for n in basis.names for c in range(basis.C(n))]
            arm_prep = replace(prep, dec=replace(dec, cm=basis), candidates=every_piece)
        selected = select_output_side(arm_prep, s.components, s.score_batches)
        modules: dict[str, list[int]] = {}
        for c in selected:
            modules.setdefault(c.module, []).append(c.index)
        refit = Refit(arm_prep.cm, {m: torch.tensor(sorted(i)) for m, i in modules.items()}, "write")
        snaps = train_refit(
            refit, prep.opt_forget, prep.opt_retain, prep.token_weights,
            steps=s.steps, lr=s.lr, retain_weight=s.retain_weight, cap=s.cap, l2=s.l2, snapshot_every=s.snapshot_every,
        )  # fmt: skip
        rows = []
        for step, factors in snaps:
            applied = apply_delta(dec.cm.targets, factor_delta(factors))
            try:
                rows.append({"arm": arm, "step": step, **heldout.score(model)})
            finally:
                applied.revert()
            print(f"{arm} step {step}: gap closed {rows[-1]['toxic_gap_closed']:.1%}", file=sys.stderr, flush=True)
        out[arm] = rows
    if args.json:
        print(json.dumps(out, indent=1))
        return out
    print(f"vpd-write settings: components {s.components}, steps {s.steps}, lr {s.lr:g}, retain_weight {s.retain_weight:g}, cap {s.cap:g}\n")
    print_table(heldout, ["basis", "step"], [([r["arm"], str(r["step"])], r) for rows in out.values() for r in rows])
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
