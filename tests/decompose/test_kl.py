"""KL(p_target ‖ p_masked) per token, against hand values, including k concatenated masked passes."""

import math

import pytest
import torch

from decompose.losses.kl import TargetDistribution


def _logits(*rows):
    # Logits = log of (unnormalised) probabilities, so softmax gives rows / row sums.
    return torch.tensor(rows).log()


# Token 1: p = [.5, .25, .25], q = [.25, .25, .5]:  KL = .5·ln2 + .25·ln1 + .25·ln(1/2) = 0.25·ln2.
# Token 2: p = [1/3]*3,        q = [.5, .25, .25]:  KL = ⅓[ln(2/3) + ln(4/3) + ln(4/3)] = ⅓·ln(32/27).
KL1 = 0.25 * math.log(2)
KL2 = math.log(32 / 27) / 3
TARGET = _logits([2.0, 1.0, 1.0], [1.0, 1.0, 1.0]).unsqueeze(0)  # (B=1, T=2, V=3)
MASKED = _logits([1.0, 1.0, 2.0], [2.0, 1.0, 1.0]).unsqueeze(0)


def test_hand_value_two_tokens():
    dist = TargetDistribution(TARGET)
    kl = dist.kl_per_token(MASKED)
    assert kl.shape == (1, 2)
    assert torch.allclose(kl, torch.tensor([[KL1, KL2]]), atol=1e-6)
    assert dist.mean_kl(MASKED).item() == pytest.approx((KL1 + KL2) / 2, abs=1e-6)


def test_zero_for_identical_and_shifted_logits():
    dist = TargetDistribution(TARGET)
    assert torch.allclose(dist.kl_per_token(TARGET), torch.zeros(1, 2), atol=1e-6)
    assert torch.allclose(dist.kl_per_token(TARGET + 3.0), torch.zeros(1, 2), atol=1e-6)


def test_gradient_reaches_masked_not_target():
    target = TARGET.clone().requires_grad_(True)
    masked = MASKED.clone().requires_grad_(True)
    TargetDistribution(target).mean_kl(masked).backward()
    assert target.grad is None
    # ∂KL/∂logits_q = (q − p)/n_tokens; token 1: ([.25,.25,.5] − [.5,.25,.25]) / 2.
    assert torch.allclose(masked.grad[0, 0], torch.tensor([-0.125, 0.0, 0.125]), atol=1e-6)


def test_repeat_passes_concatenated_along_batch():
    # Target batch B=2 of one token each; masked = [pass 0 | pass 1] along dim 0, viewed as (k=2, B=2, T=1, V).
    target = _logits([2.0, 1.0, 1.0], [1.0, 1.0, 1.0]).unsqueeze(1)  # (2, 1, 3)
    masked = torch.cat([_logits([1.0, 1.0, 2.0], [2.0, 1.0, 1.0]).unsqueeze(1), target])  # (4, 1, 3)
    dist = TargetDistribution(target)
    kl = dist.kl_per_token(masked, repeat=2)
    assert torch.allclose(kl, torch.tensor([[KL1], [KL2], [0.0], [0.0]]), atol=1e-6)
    # Mean over all k·B·T = 4 tokens; repeat inferred when omitted.
    assert dist.mean_kl(masked).item() == pytest.approx((KL1 + KL2) / 4, abs=1e-6)
    with pytest.raises(ValueError):
        dist.kl_per_token(masked, repeat=3)
    with pytest.raises(ValueError):
        dist.kl_per_token(torch.zeros(3, 1, 3))


def test_low_precision_inputs_computed_in_float32():
    dist = TargetDistribution(TARGET.bfloat16())
    kl = dist.kl_per_token(MASKED.bfloat16())
    assert kl.dtype == torch.float32
    assert torch.allclose(kl, torch.tensor([[KL1, KL2]]), atol=2e-2)
