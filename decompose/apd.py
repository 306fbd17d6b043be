"""APD: Attribution-based Parameter Decomposition (Braun et al. 2025, arXiv 2501.14926), the first of the three methods.

Each of C parameter components is a whole parameter vector: a piece P_{c,l} = A_{c,l}·B_{c,l} (rank r) in
every decomposed matrix l. Training minimises, per batch,

- faithfulness: Σ_l ‖W_l − Σ_c P_{c,l}‖² / Σ_l numel(W_l) (the components sum to the weights);
- minimality: attributions a_{b,c} = Σ_o (∂f_o(x_b)/∂θ · P_c)², the gradient at the target weights along
  component c, summed in square over the outputs; batch top-k keeps the topk·B largest a_{b,c} of the
  batch; a second forward runs input b through the kept components only (Σ_{c kept} P_{c,l} in every
  matrix, biases kept) and is compared with the target output by MSE;
- simplicity: the Schatten-p quasi-norm of each kept component's pieces, Σ_l Σ_i (‖A_{:,i}‖²‖B_{i,:}‖²)^{p/2}
  (the factorised approximation), averaged over the batch.

The directional derivative ∂f/∂θ · P_c is Σ_l G_l · (P_{c,l} x_l), where G_l = ∂f/∂(output of matrix l) and
x_l is that matrix's input: one backward per output to the matrices' outputs (batched with vmap), then a
contraction with every component's piece applied to every input. (Backpropagating to per-component
perturbations ε_c instead costs outputs × components × rank × d_out per input: 24× slower on the
100-feature residual MLP.) That is cheap for toy models with a few dozen outputs; a language model's
vocabulary makes it impractical, so APD runs on vector-output models (output_loss mse) only. Its known
weaknesses, hyper-parameter sensitivity and mechanisms mixed by top-k, are what benchmarks/toy_recovery.py
shows beside SPD and VPD.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import cast

import torch
from torch import Tensor, nn

from decompose.config import DecomposeConfig
from decompose.errors import DecompositionError
from decompose.targets import TargetMatrix, forward_hooks, module_key
from decompose.train import BatchSource, WarmupThenMain, cosine_lr, select_targets


class ApdPieces(nn.Module):
    """The C components' low-rank pieces of one matrix: A (C, d_out, r), B (C, r, d_in)."""

    def __init__(self, d_in: int, d_out: int, C: int, rank: int, scale: float):
        super().__init__()
        # Entries of A·B have std scale (per component) when A and B have std √(scale/√r) each.
        std = math.sqrt(scale / math.sqrt(rank))
        self.A = nn.Parameter(torch.randn(C, d_out, rank) * std)
        self.B = nn.Parameter(torch.randn(C, rank, d_in) * std)

    def pieces(self) -> Tensor:
        """(C, d_out, d_in), nn.Linear layout."""
        return self.A @ self.B

    def schatten(self, p: float) -> Tensor:
        """(C,): Σ_i (‖A_{:,i}‖² ‖B_{i,:}‖²)^{p/2} per component, a smooth stand-in for ‖A·B‖_p^p."""
        a2 = self.A.pow(2).sum(1)  # (C, r)
        b2 = self.B.pow(2).sum(2)  # (C, r)
        return (a2 * b2 + 1e-16).pow(p / 2).sum(1)

    def each(self, x: Tensor) -> Tensor:
        """(N, C, d_out): every component's piece applied to every row of x (N, d_in)."""
        return torch.einsum("ncr,cor->nco", torch.einsum("ni,cri->ncr", x, self.B), self.A)

    def forward_masked(self, x: Tensor, m: Tensor) -> Tensor:
        """Σ_c m_{b,c} P_c x_b for x (N, d_in), m (N, C) → (N, d_out)."""
        h = torch.einsum("ni,cri->ncr", x, self.B)
        return torch.einsum("ncr,cor->no", h * m.unsqueeze(-1), self.A)


class ApdDecomposer(WarmupThenMain):
    """APD components of a vector-output model's target matrices, with their optimiser and data."""

    def __init__(self, model: nn.Module, cfg: DecomposeConfig, batches: BatchSource, device: torch.device | str = "cpu"):
        if cfg.output_loss != "mse":
            raise DecompositionError(
                "APD needs one backward pass per model output for its attributions, so it runs on toy models with vector outputs "
                "(output_loss: mse); decompose language models with method vpd or spd"
            )
        self.cfg = cfg
        self.s = cfg.apd
        self.device = torch.device(device)
        torch.manual_seed(cfg.seed)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.model = model.to(self.device)
        self.targets: dict[str, TargetMatrix] = {t.name: t for t, _ in select_targets(model, cfg)}
        pieces = {}
        for n, t in self.targets.items():
            rank = self.s.rank or min(t.d_in, t.d_out)
            rms = float(t.weight().detach().pow(2).mean().sqrt())
            pieces[module_key(n)] = ApdPieces(t.d_in, t.d_out, self.s.C, rank, self.s.init_scale * rms / math.sqrt(self.s.C))
        self.components = nn.ModuleDict(pieces).to(self.device)
        self.opt = torch.optim.AdamW(self.components.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self._init_warmup(self.components.parameters())
        self.batches = batches
        self.data_gen = torch.Generator().manual_seed(cfg.seed)

    @property
    def names(self) -> list[str]:
        return list(self.targets)

    def comp(self, name: str) -> ApdPieces:
        return cast(ApdPieces, self.components[module_key(name)])

    def pieces(self, name: str) -> Tensor:
        return self.comp(name).pieces()

    def deltas(self) -> list[Tensor]:
        return [t.weight().detach() - self.pieces(n).sum(0) for n, t in self.targets.items()]

    def _hooked(self, fn: Callable[[str, Tensor, Tensor], Tensor]) -> AbstractContextManager[None]:
        """Every target matrix's output replaced by fn(name, input rows, output rows), for a `with` block."""

        def make(name: str):
            def hook(module, args, output):
                x = args[0]
                y = fn(name, x.reshape(-1, x.shape[-1]), output.reshape(-1, output.shape[-1]))
                return y.view_as(output)

            return hook

        return forward_hooks((t.module, make(n)) for n, t in self.targets.items())

    def attributions(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(target output, a (B, C)): a_{b,c} = Σ_o (∂f_o(x_b)/∂ε_c)² for weights W + Σ_c ε_c P_c at ε = 0."""
        seen: list[tuple[str, Tensor, Tensor]] = []  # (matrix, its input rows, a zero probe added to its output)

        def probed(name: str, xin: Tensor, out: Tensor) -> Tensor:
            probe = torch.zeros_like(out, requires_grad=True)
            seen.append((name, xin.detach(), probe))
            return out + probe

        with torch.enable_grad(), self._hooked(probed):
            y = self.model(x)
            n_out = y.shape[-1]
            # One vector-Jacobian product per output, batched: grad_outputs[o] selects output o of every input.
            eye = torch.eye(n_out, device=y.device, dtype=y.dtype).unsqueeze(1).expand(n_out, *y.shape)
            grads = torch.autograd.grad(y, [p for _, _, p in seen], grad_outputs=eye, is_grads_batched=True)  # each (n_out, B, d_out)
        with torch.no_grad():
            jac = sum(torch.einsum("onk,nck->onc", g, self.comp(name).each(xin)) for (name, xin, _), g in zip(seen, grads))
        return y.detach(), cast(Tensor, jac).pow(2).sum(0)

    def topk_mask(self, attr: Tensor) -> Tensor:
        """Batch top-k: the round(topk·B) largest attributions of the whole batch (at least one)."""
        k = max(1, min(attr.numel(), round(self.s.topk * attr.shape[0])))
        mask = torch.zeros(attr.numel(), device=attr.device)
        mask[attr.flatten().topk(k).indices] = 1.0
        return mask.view_as(attr)

    def run_components(self, x: Tensor, mask: Tensor) -> Tensor:
        """The model with every target matrix replaced by Σ_c mask_{b,c} P_c (bias kept)."""

        def only_components(name: str, xin: Tensor, out: Tensor) -> Tensor:
            bias = self.targets[name].bias()
            y = self.comp(name).forward_masked(xin, mask)
            return y if bias is None else y + bias

        with self._hooked(only_components):
            return self.model(x)

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        target, attr = self.attributions(x)
        mask = self.topk_mask(attr)
        out = self.run_components(x, mask)
        simp = torch.stack([self.comp(n).schatten(self.s.schatten_p) for n in self.names]).sum(0)  # (C,)
        return {
            "faithfulness": self.faithfulness(),
            "minimality": (out - target).pow(2).mean(),
            "simplicity": (mask * simp).sum(1).mean(),
        }

    def _main_step(self, i: int) -> dict[str, float]:
        terms = self.losses(self.batches(self.data_gen).to(self.device))
        s = self.s
        total = s.faithfulness_coeff * terms["faithfulness"] + s.minimality_coeff * terms["minimality"] + s.simplicity_coeff * terms["simplicity"]
        for group in self.opt.param_groups:
            group["lr"] = cosine_lr(i, self.cfg)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        if self.cfg.grad_clip_components is not None:
            torch.nn.utils.clip_grad_norm_(self.components.parameters(), self.cfg.grad_clip_components)
        self.opt.step()
        return {**{k: v.item() for k, v in terms.items()}, "total": total.item()}

    @torch.no_grad()
    def topk_frequency(self, x: Tensor, chunk: int = 1024) -> Tensor:
        """(C,): the fraction of inputs on which batch top-k keeps each component."""
        counts = torch.zeros(self.s.C, device=self.device)
        for part in x.to(self.device).split(chunk):
            _, attr = self.attributions(part)
            counts += self.topk_mask(attr).sum(0)
        return counts / x.shape[0]


def run_apd(model: nn.Module, batches: BatchSource, cfg: DecomposeConfig, out: Path, *, manifest_extra: dict | None = None, on_step=None) -> Path:
    """Train APD and save `out` atomically: apd_components.safetensors (A, B per matrix) + decomposition.json."""
    from safetensors.torch import save_file

    from decompose.run import start_run
    from lmkit.files import versions, write_record

    out = Path(out)
    work = start_run(out, cfg, resume=False, interrupted="APD runs do not resume; remove it")
    start = time.perf_counter()
    dec = ApdDecomposer(model, cfg, batches)
    metrics: dict[str, float] = {}
    while not dec.done:
        metrics = dec.train_step()
        if on_step is not None:
            on_step(dec.step, dec.total_steps, metrics)
    work.mkdir(parents=True)
    tensors = {}
    for n in dec.names:
        tensors[f"A.{n}"] = dec.comp(n).A.detach().float().cpu().contiguous()
        tensors[f"B.{n}"] = dec.comp(n).B.detach().float().cpu().contiguous()
    save_file(tensors, str(work / "apd_components.safetensors"), metadata={"format": "editor-apd/1"})
    manifest = {
        "format": "editor-apd/1",
        "name": cfg.name,
        "method": "apd",
        "config": cfg.model_dump(mode="json"),
        "modules": [{"name": n, "d_in": t.d_in, "d_out": t.d_out} for n, t in dec.targets.items()],
        "metrics": {**metrics, "faithfulness": dec.faithfulness().item()},
        "seconds": round(time.perf_counter() - start, 1),
        "versions": versions(),
        **(manifest_extra or {}),
    }
    (work / "decomposition.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    write_record(work)  # what a later run may replace (lmkit.files.check_replaceable)
    work.rename(out)
    return out
