"""The ceiling for editing the decomposed matrices: how far any weight edit of them gets, on held-out data.

    python benchmarks/forget_ceiling.py [--decomposition DIR] [--rank R] [--retain-weight 30] [--lr 1e-4]
                                        [--steps 300] [--every 25] [--json]

Removing components only ever reaches edits of the form W − Σ u_c v_cᵀ within the decomposition's
matrices. This trains an unconstrained (full-rank) edit of the same matrices with the objective the
selection optimises (`editor.relax`: forget loss on forget-specific next tokens minus
retain_weight × retain KL to the original), on the same selection data, and measures held-out
NLL along the way. `--rank R` restricts the edit to rank R per matrix (ΔW = A Bᵀ, a LoRA), so
`--rank 1` asks what removing one well-chosen rank-1 piece per matrix could do. Compare its
trade-off with benchmarks/forget_frontier.py: the distance between the two is what the
decomposition's components cost, not the selection.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
from heldout import Heldout, print_table

from decompose.io import load_decomposition
from editor.methods.vpd import VpdSettings, optimisation_batches
from editor.model_io import load_model
from editor.paths import DECOMPOSITIONS, FORGET_DEFAULT, RETAIN_DEFAULT
from editor.refit import capped_forget_loss
from editor.relax import forget_token_weights
from editor.search import RetainReference, weighted_forget_loss
from lmkit.texts import load_texts
from lmkit.tokens import context_length


def low_rank_edit(modules: list[torch.nn.Module], rank: int) -> list[torch.Tensor]:
    """Add (x B) Aᵀ to each module's output by a hook (A starts at 0: no edit); return the factors."""
    factors = []
    for m in modules:
        d_out, d_in = m.weight.shape  # nn.Linear layout (tiny-toxic is a Llama)
        a, b = torch.zeros(d_out, rank), torch.randn(d_in, rank) / d_in**0.5
        m.register_forward_hook(lambda mod, args, out, a=a, b=b: out + (args[0] @ b) @ a.T)
        factors += [a, b]
    return factors


def main(argv: list[str]) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--decomposition", default=str(DECOMPOSITIONS / "tiny-toxic"), help="edit the matrices this decomposition covers")
    ap.add_argument("--rank", type=int, default=0, help="rank of the edit per matrix; 0: full rank")
    ap.add_argument("--retain-weight", type=float, default=30.0)
    ap.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate on the weights")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--every", type=int, default=25, help="measure held-out NLL every this many steps")
    ap.add_argument("--cap", type=float, default=0.0, help="cap each token's NLL in the forget loss (as vpd-write does; 0: no cap)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    model, tok = load_model("tiny-toxic")
    modules = [t.module for t in load_decomposition(model, args.decomposition).cm.targets.values()]
    s = VpdSettings()
    forget = load_texts(FORGET_DEFAULT).texts
    retain = [t for p in RETAIN_DEFAULT for t in load_texts(p).texts]
    opt_f, opt_r = optimisation_batches(tok, forget, retain, s, context_length(model))
    weights = forget_token_weights(tok, forget, retain, s.token_margin)
    heldout = Heldout(model, tok)
    reference = RetainReference(model, opt_r)
    for p in model.parameters():
        p.requires_grad_(False)
    params = low_rank_edit(modules, args.rank) if args.rank else [m.weight for m in modules]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=args.lr)
    rows, start = [], time.perf_counter()
    for step in range(1, args.steps + 1):
        ids, mask = opt_f[step % len(opt_f)]
        forget_loss = capped_forget_loss(model, ids, mask, weights, args.cap) if args.cap else weighted_forget_loss(model, ids, mask, weights)
        kl = reference.kl(model, step % len(opt_r))
        loss = -forget_loss + args.retain_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % args.every == 0:
            model.eval()
            rows.append({"step": step, "seconds": time.perf_counter() - start, **heldout.score(model)})
            if not args.json:
                print(f"step {step}: gap closed {rows[-1]['toxic_gap_closed']:.1%}, benign {rows[-1]['benign_change']:+.2%}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=1))
        return rows
    print(f"{len(modules)} matrices, rank {args.rank or 'full'}, retain weight {args.retain_weight:g}, lr {args.lr:g}")
    print_table(heldout, ["step"], [([str(r["step"])], r) for r in rows])
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
