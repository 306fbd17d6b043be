"""The decomposition training loop: faithfulness warmup, then VPD steps; resumable to the exact bit on CPU.

Library code: progress goes through the `on_step` callback and metrics through `on_metrics`; nothing
here prints. All randomness comes from two generators (data, masks) plus the global seed used once at
construction, and all of it is part of `state_dict()`.

Data parallel (under torchrun, see decompose.distributed): every rank starts from the same parameters,
draws its own batches (`batch_size` per rank) and masks and keeps its own persistent adversary; the
gradients are averaged by one all-reduce per step, as DDP does, before clipping and the optimiser step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import cast

import torch
from torch import Tensor

from decompose.component_model import ComponentModel
from decompose.config import DecomposeConfig
from decompose.data import random_windows
from decompose.distributed import DistInfo, average_gradients_, broadcast_, current
from decompose.fused import ci_activations
from decompose.io import init_from_decomposition
from decompose.losses.faithfulness import faithfulness_loss
from decompose.losses.importance_minimality import annealed_p, importance_minimality_from_sums, importance_minimality_loss
from decompose.losses.kl import OutputTarget, TargetDistribution, TargetMSE
from decompose.losses.recon import ReconContext, batched_kls
from decompose.sigmoids import lower_leaky_hard_sigmoid, upper_leaky_hard_sigmoid
from decompose.targets import TargetMatrix, default_patterns, resolve_targets

StepCallback = Callable[[int, int, dict[str, float]], None]
BatchSource = Callable[[torch.Generator], Tensor]

# The parts of `Decomposer.state_dict()` that differ between data-parallel ranks (the rest is identical).
PER_RANK_STATE = ("recon", "data_gen", "mask_gen")


def lm_batches(stream: Tensor, batch_size: int, seq_len: int) -> BatchSource:
    """Random windows of a token stream (the data position is the generator's state)."""
    return lambda gen: random_windows(stream, batch_size, seq_len, gen)


def select_targets(model, cfg: DecomposeConfig) -> list[tuple[TargetMatrix, int]]:
    patterns = cfg.targets or dict.fromkeys(default_patterns(model), cfg.default_C)
    return resolve_targets(model, patterns)


def cosine_schedule(base: float, step: int, steps: int, final_frac: float, warmup: int = 0) -> float:
    """`base` warmed up linearly over `warmup` steps, then cosine-decayed to final_frac·base at `steps`."""
    if step < warmup:
        return base * (step + 1) / warmup
    frac = (step - warmup) / max(1, steps - warmup)
    return base * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * frac)))


def cosine_lr(step: int, cfg: DecomposeConfig) -> float:
    return cosine_schedule(cfg.lr, step, cfg.steps, cfg.lr_final_frac, round(cfg.lr_warmup_frac * cfg.steps))


class WarmupThenMain:
    """Training in two phases counted by one `step`: `warmup_steps` faithfulness-only steps (the components
    start summing to the weights) with their own optimiser, set by `cfg.warmup`, then `cfg.steps` main steps.
    Subclasses give `deltas` and `_main_step`."""

    cfg: DecomposeConfig

    def _init_warmup(self, params) -> None:
        self.warmup_steps, lr = self.cfg.warmup
        self.warm_opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        self.step = 0  # counts warmup steps, then main steps

    @property
    def total_steps(self) -> int:
        return self.warmup_steps + self.cfg.steps

    @property
    def done(self) -> bool:
        return self.step >= self.total_steps

    def deltas(self) -> list[Tensor]:
        """W − (the components' sum) per decomposed matrix, with gradient into the components."""
        raise NotImplementedError

    def faithfulness(self) -> Tensor:
        return faithfulness_loss(self.deltas())

    def _main_step(self, i: int) -> dict[str, float]:
        raise NotImplementedError

    def train_step(self) -> dict[str, float]:
        if self.step == self.warmup_steps:
            self.warm_opt.state.clear()  # its Adam moments (8 bytes per component parameter) are never used again
        metrics = self._warmup_step() if self.step < self.warmup_steps else self._main_step(self.step - self.warmup_steps)
        self.step += 1
        return metrics

    def _warmup_step(self) -> dict[str, float]:
        loss = self.faithfulness()
        self.warm_opt.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients_(self.warm_opt.param_groups[0]["params"])  # data parallel: one all-reduce per step
        self.warm_opt.step()
        return {"faithfulness": loss.item()}


class Decomposer(WarmupThenMain):
    """Components + CI function + optimisers + adversaries for one target model."""

    def __init__(
        self,
        model,
        cfg: DecomposeConfig,
        data: Tensor | BatchSource,
        device: torch.device | str = "cpu",
        dist: DistInfo | None = None,
    ):
        """`data`: a token stream (LMs: random windows of batch_size × seq_len) or a batch source.

        `dist`: this process's rank (default: the initialised process group, else a single process).
        """
        self.cfg = cfg
        self.dist = dist if dist is not None else current()
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None and self.dist.world_size > 1:
            self.device = torch.device("cuda", self.dist.local_rank)
        torch.manual_seed(cfg.seed)  # the same on every rank: identical initial parameters
        model.eval()
        self.cm = ComponentModel(model, select_targets(model, cfg), "logits" if cfg.output_loss == "kl" else "tensor")
        self.cm.to(self.device)
        shapes = {n: (t.d_in, self.cm.C(n)) for n, t in self.cm.targets.items()}
        self.ci_fn = cfg.ci_fn.build(shapes).to(self.device)
        if cfg.init_from:
            init_from_decomposition(self.cm, self.ci_fn, cfg, Path(cfg.init_from))
        self.recon = [(r, r.build()) for r in cfg.recon]
        self.params = params = list(self.cm.components.parameters()) + list(self.ci_fn.parameters())
        broadcast_(params)  # identical by the seed already; rank 0's values make sure
        # fused AdamW: one kernel for all parameters instead of ~10 elementwise passes per tensor.
        self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        self._init_warmup(self.cm.components.parameters())
        self.batches = lm_batches(data, cfg.batch_size, cfg.seq_len) if isinstance(data, Tensor) else data
        # Per rank (seed·world_size + rank; the plain seed with one process): different batches and masks.
        self.data_gen = torch.Generator().manual_seed(self.dist.seed(cfg.seed))
        self.mask_gen = torch.Generator(device=self.device).manual_seed(self.dist.seed(cfg.seed + 1))
        self.set_fast(True)

    def set_fast(self, fast: bool) -> None:
        """The optimised path (default) or the plain-autograd reference it is tested against; same math."""
        self.fast = fast
        self.cm.fused = fast
        if hasattr(self.ci_fn, "grouped"):
            self.ci_fn.grouped = fast

    def deltas(self) -> list[Tensor]:
        return list(self.cm.deltas().values())

    def autocast(self):
        if self.device.type == "cuda" and self.cfg.autocast_bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def next_batch(self) -> Tensor:
        return self.batches(self.data_gen).to(self.device)

    def ci(self, inputs: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """(lower-leaky g for masks, upper-leaky ĝ for minimality) per matrix."""
        z = self.ci_fn(inputs)
        a = self.cfg.sigmoid_alpha
        return (
            {n: lower_leaky_hard_sigmoid(v, a) for n, v in z.items()},
            {n: upper_leaky_hard_sigmoid(v, a) for n, v in z.items()},
        )

    def target_pass(self, batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        with torch.no_grad(), self.cm.caching_inputs() as inputs:
            out = self.cm.run(batch)
        return out, inputs

    def output_target(self, out: Tensor) -> OutputTarget:
        return TargetDistribution(out) if self.cfg.output_loss == "kl" else TargetMSE(out)

    def losses(self, ids: Tensor, i: int) -> tuple[dict[str, Tensor], Tensor, ReconContext]:
        """Every loss term of main step i on a batch, their weighted total, and the step context (CIs in ctx.ci)."""
        cfg = self.cfg
        with self.autocast():
            logits, inputs = self.target_pass(ids)
            target = self.output_target(logits)
            terms: dict[str, Tensor] = {}
            if cfg.faithfulness:
                terms["faithfulness"] = self.faithfulness()
            imp = cfg.importance
            p = annealed_p(i, cfg.steps, imp) if imp else 0.0  # p is used only with importance minimality
            if imp and self.fast:
                # One node per matrix for both sigmoids and the p-norm sums (decompose.fused).
                g, sums = {}, []
                for n, z in self.ci_fn(inputs).items():
                    g[n], s = ci_activations(z, p, cfg.sigmoid_alpha, imp.eps, compiled=cfg.compile)
                    sums.append(s)
                counts = [z.numel() // z.shape[-1] for z in g.values()]
                terms["importance_minimality"] = importance_minimality_from_sums(sums, counts, imp.beta, self.dist.world_size)
            else:
                g, g_upper = self.ci(inputs)
                if imp:
                    terms["importance_minimality"] = importance_minimality_loss(list(g_upper.values()), p, imp.beta, imp.eps, world_size=self.dist.world_size)
            ctx = ReconContext(self.cm, ids, g, target, self.mask_gen, i, cfg.steps)
            passes = [loss.masks(ctx) for _, loss in self.recon]
            for (rcfg, _), kl in zip(self.recon, batched_kls(ctx, passes)):
                terms[rcfg.kind] = kl
            coeffs: dict[str, float] = {loss.kind: loss.coeff for loss in cfg.losses}
            total = cast(Tensor, sum(coeffs[k] * v for k, v in terms.items()))
        return terms, total, ctx

    def _main_step(self, i: int) -> dict[str, float]:
        cfg = self.cfg
        terms, total, ctx = self.losses(self.next_batch(), i)
        g = ctx.ci
        lr = cosine_lr(i, cfg)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        average_gradients_(self.params)  # data parallel: one all-reduce per step, as DDP does, before clipping
        if cfg.grad_clip_components is not None:
            torch.nn.utils.clip_grad_norm_(self.cm.components.parameters(), cfg.grad_clip_components)
        self.opt.step()
        for _, loss in self.recon:
            loss.after_backward(ctx)
        metrics = {k: v.item() for k, v in terms.items()}
        metrics["total"] = total.item()
        metrics["lr"] = lr
        metrics["l0"] = sum((v > 0).sum(-1).float().mean().item() for v in g.values()) / len(g)
        if cfg.importance:
            metrics["p"] = annealed_p(i, cfg.steps, cfg.importance)
        return metrics

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "components": self.cm.components.state_dict(),
            "ci_fn": self.ci_fn.state_dict(),
            "opt": self.opt.state_dict(),
            "warm_opt": self.warm_opt.state_dict(),
            "recon": {rcfg.kind: loss.state_dict() for rcfg, loss in self.recon},
            "data_gen": self.data_gen.get_state(),
            "mask_gen": self.mask_gen.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.cm.components.load_state_dict(state["components"])
        self.ci_fn.load_state_dict(state["ci_fn"])
        self.opt.load_state_dict(state["opt"])
        self.warm_opt.load_state_dict(state["warm_opt"])
        for rcfg, loss in self.recon:
            loss.load_state_dict(state["recon"][rcfg.kind], self.device)
        self.data_gen.set_state(state["data_gen"])
        self.mask_gen.set_state(state["mask_gen"])
