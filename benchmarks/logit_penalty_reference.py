"""A reference point for forget quality that is not an edit: penalise the most forget-specific tokens' logits.

    python benchmarks/logit_penalty_reference.py

Subtracts a constant from the output logits of the N next tokens most over-represented in the forget
set (the same frequency ratio `editor forget` weights its forget loss by) and measures held-out NLL.
It shows how far pure output suppression goes on the shipped data, to compare with what removing
decomposition components achieves (benchmarks/forget_frontier.py).
"""

from __future__ import annotations

import torch
from heldout import Heldout, print_table

from editor.model_io import load_model
from editor.paths import FORGET_DEFAULT, RETAIN_DEFAULT
from editor.relax import forget_token_weights
from lmkit.texts import load_texts


class Penalised(torch.nn.Module):
    """The model with `penalty` subtracted from the logits of `tokens` (for evals.nll.mean_nll)."""

    def __init__(self, model, tokens: torch.Tensor, penalty: float):
        super().__init__()
        self.model, self.config = model, model.config
        self.bias = torch.zeros(model.config.vocab_size)
        self.bias[tokens] = -penalty

    def forward(self, **kwargs):
        out = self.model(**kwargs)
        out.logits = out.logits + self.bias
        return out


def main() -> None:
    model, tok = load_model("tiny-toxic")
    forget = load_texts(FORGET_DEFAULT).texts
    retain = [t for p in RETAIN_DEFAULT for t in load_texts(p).texts]
    order = forget_token_weights(tok, forget, retain, margin=0.0).argsort(descending=True)
    heldout = Heldout(model, tok)
    rows = [([str(n), f"{penalty:g}"], heldout.score(Penalised(model, order[:n], penalty))) for n in (30, 100) for penalty in (10.0, 20.0)]
    print_table(heldout, ["tokens", "penalty"], rows)


if __name__ == "__main__":
    main()
