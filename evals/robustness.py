"""Is the forgetting robust? Two attacks that bring "unlearned" knowledge back in published work.

* Relearning (Hu et al. 2024, Łucki et al. 2024, Deeb & Roger 2024): fine-tune the edited model on a
  few forget examples and watch how fast the forget-set NLL falls back. Run the same attack on a model
  that never learned the data (the oracle, `tiny-clean`) as the reference: an edit is only as good as
  the gap between the two curves.
* Quantization (Zhang et al., ICLR'25): small weight updates can vanish when weights are rounded to
  8 or 4 bits. `quantize_weights` rounds every 2-D Linear / GPT-2 Conv1D weight per output channel
  (symmetric, round to nearest) so forget and retain NLL can be measured again on the rounded model.

Both functions work on a deep copy: the model passed in is never modified.
"""

from __future__ import annotations

import copy

import torch
from pydantic import Field, NonNegativeInt, PositiveInt
from torch import nn

from decompose.config_base import BaseConfig
from lmkit.nll import mean_nll
from lmkit.tokens import TokenBatches, context_length


class RelearnSettings(BaseConfig):
    """The relearning attack, one config for `editor eval` and `editor compare`."""

    docs: PositiveInt = Field(512, description="Forget-set documents the attacker fine-tunes on (sampled; 50 steps × 8 see each at most once).")
    steps: NonNegativeInt = Field(50, description="Fine-tuning steps (AdamW, all weights); 0 skips relearning.")
    lr: float = Field(3e-4, gt=0, description="Attack learning rate (at 1e-3 the attack itself raises tiny-toxic's held-out toxic NLL).")
    batch_size: PositiveInt = Field(8, description="Attack documents per step.")
    eval_every: PositiveInt = Field(10, description="Held-out forget NLL measured every this many steps.")


def relearn_curve(
    model,
    tokenizer,
    attack_texts: list[str],
    eval_texts: list[str],
    *,
    steps: int,
    lr: float,
    batch_size: int,
    eval_every: int,
    seed: int = 0,
    retain_texts: list[str] | None = None,
) -> list[dict]:
    """Fine-tune a copy of `model` on `attack_texts` (AdamW, all weights) and measure `eval_texts` NLL as it goes.

    The settings come from `RelearnSettings` (one set of defaults for every caller).

    Returns [{"step": 0, "nll": ...}, {"step": eval_every, "nll": ...}, ..., {"step": steps, "nll": ...}]
    (mean NLL per token in nats); with `retain_texts` each point also has "retain_nll", the side effect
    of the attack on data the model should keep. The passed model is not modified.
    """
    if steps < 0 or eval_every < 1 or batch_size < 1:
        raise ValueError("steps must be >= 0, eval_every and batch_size >= 1")
    if not eval_texts:
        raise ValueError("relearning needs eval texts to measure")
    attacked = copy.deepcopy(model)
    params = [p for p in attacked.parameters() if p.is_floating_point()]
    for p in params:
        p.requires_grad_(True)
    device = next(attacked.parameters()).device
    max_len = context_length(attacked)

    def point(step: int) -> dict:
        row = {"step": step, "nll": mean_nll(attacked, tokenizer, eval_texts).mean}
        if retain_texts:
            row["retain_nll"] = mean_nll(attacked, tokenizer, retain_texts).mean
        return row

    curve = [point(0)]
    if steps == 0:
        return curve
    try:
        stream = TokenBatches(tokenizer, attack_texts, max_len, batch_size, seed)
    except ValueError:
        raise ValueError("relearning needs at least one attack text with two or more tokens") from None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        for step in range(1, steps + 1):
            attacked.train()
            inputs, mask, labels = stream.next()
            out = attacked(input_ids=inputs.to(device), attention_mask=mask.to(device), labels=labels.to(device))
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()
            if step % eval_every == 0 or step == steps:
                attacked.eval()
                curve.append(point(step))

    return curve


def _is_conv1d(module: nn.Module) -> bool:
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")  # transformers.pytorch_utils.Conv1D


@torch.no_grad()
def round_to_nearest(weight: torch.Tensor, bits: int, out_dim: int = 0) -> torch.Tensor:
    """Symmetric per-output-channel round-to-nearest: scale = max|w| / (2^(bits-1) - 1) per channel along `out_dim`."""
    if not 2 <= bits <= 16:
        raise ValueError(f"bits must be between 2 and 16, got {bits}")
    qmax = 2 ** (bits - 1) - 1
    w = weight.float()
    reduce_dim = 1 - out_dim
    scale = w.abs().amax(dim=reduce_dim, keepdim=True) / qmax
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.clamp(torch.round(w / scale), -qmax, qmax)
    return (q * scale).to(weight.dtype)


@torch.no_grad()
def quantize_weights(model, bits: int) -> nn.Module:
    """A copy of `model` whose 2-D Linear / Conv1D weights are rounded to `bits` bits (symmetric, per output channel).

    Biases, norms and embeddings that are not also an output Linear stay in full precision; a weight
    tied between modules (input embedding and LM head) is rounded once, per row of the LM head.
    The rounded values are stored back in the original dtype ("fake quantization"), so the copy runs
    anywhere the original does.
    """
    if not 2 <= bits <= 16:
        raise ValueError(f"bits must be between 2 and 16, got {bits}")
    quantized = copy.deepcopy(model)
    seen: set[int] = set()
    for module in quantized.modules():
        if isinstance(module, nn.Linear):
            out_dim = 0  # weight (out, in)
        elif _is_conv1d(module):
            out_dim = 1  # GPT-2 Conv1D weight (in, out)
        else:
            continue
        weight = getattr(module, "weight", None)
        if weight is None or weight.dim() != 2 or id(weight) in seen or not weight.is_floating_point():
            continue
        seen.add(id(weight))
        weight.copy_(round_to_nearest(weight, bits, out_dim))
    quantized.eval()
    return quantized
