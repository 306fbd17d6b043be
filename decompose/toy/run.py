"""Decompose a toy model with any method (the config's `method`) and score it against the ground truth."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor

from decompose.config import DecomposeConfig
from decompose.toy.models import Toy
from decompose.toy.recovery import ONE_HOT, Recovery, recovery

ALIVE_MEAN_CI = 1e-3  # SPD/VPD: a subcomponent is alive if its mean CI over sparse data exceeds this
ALIVE_TOPK_FREQ = 1e-3  # APD: a component is alive if batch top-k selects it on more than this fraction of inputs
EVAL_BATCH = 8192


@dataclass
class ToyResult:
    method: str
    components: dict[str, Tensor]  # matrix → (K, d_out, d_in)
    alive: dict[str, Tensor] | Tensor
    seconds: float  # CPU seconds of this process (the wall clock depends on what else the machine runs)
    faithfulness: float  # Σ ‖W − Σ components‖² / numel over the decomposed matrices
    recovery: Recovery
    model: object  # the trained Decomposer or ApdDecomposer


def rank_one_stack(U: Tensor, V: Tensor) -> Tensor:
    """(C, d_out, d_in): u_c v_cᵀ for every component of V (d_in, C) and U (C, d_out)."""
    return torch.einsum("co,ic->coi", U, V)


def _train(dec) -> float:
    """Train to the end; the CPU seconds it took (creating the decomposer is not counted)."""
    start = time.process_time()
    while not dec.done:
        dec.train_step()
    return time.process_time() - start


def _spd_like(toy: Toy, cfg: DecomposeConfig, eval_x: Tensor) -> ToyResult:
    from decompose.train import Decomposer

    dec = Decomposer(toy.model, cfg, toy.batches(cfg.batch_size))
    seconds = _train(dec)
    with torch.no_grad():
        _, inputs = dec.target_pass(eval_x)
        g = dec.ci(inputs)[0]
        comps = {n: rank_one_stack(dec.cm.comp(n).U, dec.cm.comp(n).V) for n in dec.cm.names}
        alive = {n: g[n].float().mean(0) > ALIVE_MEAN_CI for n in dec.cm.names}
        faith = dec.faithfulness().item()
        _, one_hot_inputs = dec.target_pass(ONE_HOT * torch.eye(toy.spec.n_features, device=eval_x.device))
        one_hot_ci = dec.ci(one_hot_inputs)[0]
    return ToyResult(cfg.method, comps, alive, seconds, faith, recovery(toy, comps, alive, "matrix", one_hot_ci), dec)


def _apd(toy: Toy, cfg: DecomposeConfig, eval_x: Tensor) -> ToyResult:
    from decompose.apd import ApdDecomposer

    dec = ApdDecomposer(toy.model, cfg, toy.batches(cfg.batch_size))
    seconds = _train(dec)
    comps = {n: dec.pieces(n).detach() for n in dec.names}
    freq = dec.topk_frequency(eval_x)
    alive = freq > ALIVE_TOPK_FREQ
    return ToyResult("apd", comps, alive, seconds, dec.faithfulness().item(), recovery(toy, comps, alive, "component"), dec)


def decompose_toy(toy: Toy, cfg: DecomposeConfig, eval_seed: int = 1234) -> ToyResult:
    """Train `cfg` on the toy model and score it on a fixed sparse eval batch."""
    eval_x = toy.batches(EVAL_BATCH)(torch.Generator().manual_seed(eval_seed))
    if cfg.method == "apd":
        return _apd(toy, cfg, eval_x)
    return _spd_like(toy, cfg, eval_x)


def with_loss(cfg: DecomposeConfig, kind: str, **fields: object) -> DecomposeConfig:
    """`cfg` with fields of its `kind` loss replaced (recipe `--set` overrides cannot index the loss list)."""
    data = cfg.model_dump()
    hits = [loss for loss in data["losses"] if loss["kind"] == kind]
    if not hits:
        raise KeyError(f"{cfg.name} has no {kind} loss")
    hits[0].update(fields)
    return DecomposeConfig.model_validate(data)


def scale_minimality(cfg: DecomposeConfig, factor: float) -> DecomposeConfig:
    """The minimality knob times `factor`: importance_minimality.coeff for SPD/VPD, batch top-k for APD."""
    if cfg.method == "apd":
        return cfg.model_copy(update={"apd": cfg.apd.model_copy(update={"topk": cfg.apd.topk * factor})})
    imp = cfg.importance
    assert imp is not None, f"{cfg.name} has no importance_minimality loss"
    return with_loss(cfg, "importance_minimality", coeff=imp.coeff * factor)
