"""Training-loop details: the cosine lr schedule, component-only gradient clipping, and resuming after a kill
during a checkpoint write."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import decompose.checkpoint as checkpoint
from decompose.checkpoint import latest_checkpoint
from decompose.config import DecomposeConfig
from decompose.run import partial_dir, run_decomposition
from decompose.train import Decomposer, cosine_lr
from tests.fixtures import VOCAB, tiny_model

LOSSES = [{"kind": "faithfulness", "warmup_steps": 0}, {"kind": "importance_minimality"}, {"kind": "stochastic_recon"}]


def _cfg(**kw) -> DecomposeConfig:
    base = dict(default_C=4, batch_size=2, seq_len=8, steps=10, lr=1e-3, losses=LOSSES)
    return DecomposeConfig(**{**base, **kw})


def _stream(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (300,), generator=torch.Generator().manual_seed(seed))


# --- cosine lr --------------------------------------------------------------------------------------


def test_cosine_lr_without_warmup():
    cfg = _cfg(lr_final_frac=0.1)
    # lr·(f + (1 − f)·½(1 + cos(π·step/steps))), f = 0.1, steps = 10
    assert cosine_lr(0, cfg) == pytest.approx(1e-3)  # cos 0 = 1 → 0.1 + 0.9 = 1
    assert cosine_lr(5, cfg) == pytest.approx(5.5e-4)  # cos(π/2) = 0 → 0.1 + 0.9·½ = 0.55
    # the last step run, 9: cos(0.9π) = −0.9510565 → 0.1 + 0.9·½·0.0489435 = 0.1220246
    assert cosine_lr(9, cfg) == pytest.approx(1.220246e-4, rel=1e-6)
    assert cosine_lr(10, cfg) == pytest.approx(1e-4)  # cos π = −1 → exactly the final fraction
    # Decreasing all the way.
    lrs = [cosine_lr(i, cfg) for i in range(11)]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    # f = 0: half the peak mid-run, 0 at the end.
    cfg0 = _cfg(lr_final_frac=0.0)
    assert cosine_lr(5, cfg0) == pytest.approx(5e-4)
    assert cosine_lr(10, cfg0) == pytest.approx(0.0, abs=1e-15)


def test_cosine_lr_with_warmup():
    cfg = _cfg(lr_final_frac=0.1, lr_warmup_frac=0.2)
    # warm = int(0.2·10) = 2 steps: lr·(step + 1)/2
    assert cosine_lr(0, cfg) == pytest.approx(5e-4)
    assert cosine_lr(1, cfg) == pytest.approx(1e-3)
    # then the cosine over the remaining 8 steps: frac = (step − 2)/8
    assert cosine_lr(2, cfg) == pytest.approx(1e-3)  # frac 0
    assert cosine_lr(6, cfg) == pytest.approx(5.5e-4)  # frac ½
    assert cosine_lr(10, cfg) == pytest.approx(1e-4)  # frac 1
    # frac ¼ at step 4: 0.1 + 0.9·½(1 + cos(π/4)) = 0.1 + 0.45·1.7071068 = 0.8681981
    assert cosine_lr(4, cfg) == pytest.approx(8.681981e-4, rel=1e-6)


def test_decomposer_uses_the_schedule():
    dec = Decomposer(tiny_model("llama"), _cfg(steps=4, lr_warmup_frac=0.5), _stream())
    lrs = [dec.train_step()["lr"] for _ in range(4)]
    cfg = dec.cfg
    assert lrs == [cosine_lr(i, cfg) for i in range(4)]
    assert lrs[0] == pytest.approx(5e-4)  # warm = 2: 1e-3·1/2
    assert dec.opt.param_groups[0]["lr"] == lrs[-1]


# --- gradient clipping of U and V only --------------------------------------------------------------


def _one_step(clip: float | None):
    dec = Decomposer(tiny_model("llama"), _cfg(grad_clip_components=clip), _stream())
    comps0 = [p.detach().clone() for p in dec.cm.components.parameters()]
    ci0 = [p.detach().clone() for p in dec.ci_fn.parameters()]
    dec.train_step()
    comp_change = torch.cat([(p.detach() - q).flatten() for p, q in zip(dec.cm.components.parameters(), comps0)])
    ci_change = [p.detach() - q for p, q in zip(dec.ci_fn.parameters(), ci0)]
    # Gradients are kept after the step (zero_grad happens at the start of the next one).
    comp_grad = torch.cat([p.grad.flatten() for p in dec.cm.components.parameters()])
    ci_grad = [p.grad.clone() for p in dec.ci_fn.parameters()]
    return comp_change, ci_change, comp_grad, ci_grad


def test_grad_clip_applies_to_components_only():
    clip = 1e-12
    free_change, free_ci_change, free_grad, free_ci_grad = _one_step(None)
    clip_change, clip_ci_change, clip_grad, clip_ci_grad = _one_step(clip)
    # The unclipped component gradient is far above the limit, so clipping acted ...
    assert free_grad.norm() > 1.0
    # ... scaling it (clip_grad_norm_ multiplies by clip/(norm + 1e-6)) to norm ≤ clip, direction unchanged.
    assert clip_grad.norm() <= clip * (1 + 1e-4)
    assert torch.allclose(clip_grad / clip_grad.norm(), free_grad / free_grad.norm(), atol=1e-5)
    # Adam's first step is lr·g/(|g| + 1e-8): about lr·sign(g) unclipped, at most lr·1e-12/1e-8 = lr·1e-4 clipped.
    assert free_change.abs().max() == pytest.approx(1e-3, rel=1e-2)
    assert clip_change.abs().max() <= 1e-3 * 1e-4 * 1.01
    assert clip_change.norm() < 1e-3 * free_change.norm()
    # The CI function is not clipped: the same gradient and the same update as without clipping, bit for bit.
    assert sum(g.norm() ** 2 for g in free_ci_grad).sqrt() > 10 * clip
    assert all(torch.equal(a, b) for a, b in zip(clip_ci_grad, free_ci_grad))
    assert all(torch.equal(a, b) for a, b in zip(clip_ci_change, free_ci_change))
    assert any(c.abs().max() > 1e-4 for c in clip_ci_change)


# --- a kill during a checkpoint write -----------------------------------------------------------------


class Interrupt(Exception):
    pass


def _run_cfg() -> DecomposeConfig:
    return DecomposeConfig(
        default_C=4,
        batch_size=2,
        seq_len=8,
        steps=11,  # + 1 warmup step = 12 steps; checkpoints at 4, 8 and 12
        checkpoint_every=4,
        losses=[
            {"kind": "faithfulness", "warmup_steps": 1},
            {"kind": "importance_minimality"},
            {"kind": "stochastic_recon"},
            {"kind": "persistent_pgd_recon", "n_warmup_steps": 1},  # adversary state must survive the resume too
        ],
        eval={"every": 100, "batches": 1, "pgd_steps": 2},
    )


def _junk_tmp(ckpt_dir: Path, step: int) -> Path:
    tmp = ckpt_dir / f"step_{step:08d}.tmp-checkpoint"  # what a SIGKILL mid-write leaves
    tmp.mkdir()
    (tmp / "state.safetensors").write_bytes(b"\x00garbage")
    (tmp / "state.json").write_text('{"truncated": ', encoding="utf-8")
    return tmp


def test_kill_during_checkpoint_write_then_resume(tmp_path, monkeypatch):
    cfg = _run_cfg()
    stream = _stream(1)
    reference = run_decomposition(tiny_model("llama"), stream, cfg, tmp_path / "ref")
    torch.set_num_threads(1)

    # The write of the step-8 checkpoint is killed after a partial file: step 4 stays the last complete one.
    real_save_state = checkpoint.save_state

    def killed_at_step_8(state, directory, stem):
        if directory.name == "step_00000008.tmp-checkpoint":
            (directory / f"{stem}.safetensors").write_bytes(b"\x00partial")
            raise Interrupt
        real_save_state(state, directory, stem)

    monkeypatch.setattr(checkpoint, "save_state", killed_at_step_8)
    out = tmp_path / "dec"
    with pytest.raises(Interrupt):
        run_decomposition(tiny_model("llama"), stream, cfg, out)
    monkeypatch.setattr(checkpoint, "save_state", real_save_state)
    torch.set_num_threads(1)
    ckpt_dir = partial_dir(out) / "checkpoints"
    # The failed write cleaned up after itself (atomic_dir); step 4 is the last checkpoint.
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["step_00000004"]

    # A leftover of a SIGKILL, numbered after the complete checkpoint: ignored and removed.
    _junk_tmp(ckpt_dir, 99)
    assert latest_checkpoint(ckpt_dir) == ckpt_dir / "step_00000004"
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["step_00000004"]

    # Resume (with a fresh leftover) continues from step 4 and ends where the uninterrupted run ended.
    _junk_tmp(ckpt_dir, 99)
    steps_run = []
    resumed = run_decomposition(tiny_model("llama"), stream, cfg, out, resume=True, on_step=lambda step, total, m: steps_run.append(step))
    torch.set_num_threads(1)
    assert steps_run == list(range(5, 13))
    assert not partial_dir(out).exists()
    assert sorted(p.name for p in (resumed / "checkpoints").iterdir()) == ["step_00000012"]
    got, want = load_file(resumed / "components.safetensors"), load_file(reference / "components.safetensors")
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want), [k for k in want if not torch.equal(got[k], want[k])]


def test_latest_checkpoint_of_missing_or_empty_dir(tmp_path):
    assert latest_checkpoint(tmp_path / "absent") is None
    (tmp_path / "ck").mkdir()
    _junk_tmp(tmp_path / "ck", 3)
    assert latest_checkpoint(tmp_path / "ck") is None
    assert list((tmp_path / "ck").iterdir()) == []
