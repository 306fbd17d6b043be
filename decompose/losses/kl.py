"""Per-token KL(p_target ‖ p_masked) against the target model's next-token distribution, in float32."""

from __future__ import annotations

import torch
from torch import Tensor


class TargetDistribution:
    """The target's log-probs and per-token Σ p log p, built once per batch and reused by every masked pass.

    target_logits: (B, *rest, V), e.g. (B, T, V). Masked logits may be k concatenated passes along the
    batch dim, (k·B, *rest, V): they are viewed as (k, B, *rest, V) and compared with the same target.
    """

    def __init__(self, target_logits: Tensor):
        with torch.no_grad():
            self.log_probs = torch.log_softmax(target_logits.detach().float(), dim=-1)
            # Σ_v p log p per token; xlogy gives 0·log 0 = 0 where a probability underflows.
            probs = self.probs = self.log_probs.exp()
            self.neg_entropy = torch.special.xlogy(probs, probs).sum(-1)

    def _repeat(self, masked_logits: Tensor, repeat: int | None) -> int:
        """How many target-sized passes are concatenated along dim 0 (inferred when None, checked when given)."""
        tgt, got = self.log_probs.shape, masked_logits.shape
        if got[1:] != tgt[1:] or got[0] % tgt[0] != 0:
            raise ValueError(f"masked logits {tuple(got)} do not stack target-shaped passes {tuple(tgt)}")
        k = got[0] // tgt[0]
        if repeat is not None and repeat != k:
            raise ValueError(f"repeat={repeat} but masked logits hold {k} passes of batch {tgt[0]}")
        return k

    def kl_per_token(self, masked_logits: Tensor, repeat: int | None = None) -> Tensor:
        """KL per token, shape masked_logits.shape[:-1] (k·B, *rest) when k passes are concatenated."""
        k = self._repeat(masked_logits, repeat)
        log_q = torch.log_softmax(masked_logits.float(), dim=-1)
        log_q = log_q.view(k, *self.log_probs.shape)
        probs = self.probs
        # Σ p (log p − log q) = Σ p log p − Σ p log q; the first term is cached per batch.
        cross = (probs * log_q).sum(-1)
        return (self.neg_entropy - cross).reshape(masked_logits.shape[:-1])

    def mean_kl(self, masked_logits: Tensor, repeat: int | None = None) -> Tensor:
        """Scalar mean of the per-token KL over all tokens (and over all k concatenated passes)."""
        return self.kl_per_token(masked_logits, repeat).mean()

    per_token = kl_per_token
    mean = mean_kl


class TargetMSE:
    """For toy models with vector outputs: squared error to the target output, per token (mean over features)
    and its mean per element (the reference's `mse` output loss)."""

    def __init__(self, target_out: Tensor):
        self.out = target_out.detach().float()

    def per_token(self, out: Tensor) -> Tensor:
        k = out.shape[0] // self.out.shape[0]
        diff = out.float().view(k, *self.out.shape) - self.out
        return diff.pow(2).mean(-1).reshape(out.shape[:-1])

    def mean(self, out: Tensor) -> Tensor:
        return self.per_token(out).mean()


OutputTarget = TargetDistribution | TargetMSE
