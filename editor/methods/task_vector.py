"""Task-vector negation (Ilharco et al., ICLR'23) with a PEFT LoRA as the task vector.

Fine-tune a LoRA adapter on the forget set (plain next-token cross-entropy, descent), which moves the
model further towards the forget data; the adapter's ΔW = scaling·B·A per matrix is that "task
vector". Negate it: W ← W − α·ΔW. The strength is α. One fine-tune yields every α, and the edit is
exactly rank r per matrix, so its exported adapter is the trained one with B scaled by −α.
"""

from __future__ import annotations

import copy
import math
import time
from typing import cast

import torch
from peft import LoraConfig, get_peft_model
from pydantic import Field, PositiveInt
from torch import nn

from decompose.config_base import BaseConfig
from editor.edit import Edit
from editor.errors import EditorError
from editor.methods.base import BaselineRun, Factors, ForgetInputs, Method, Progress, Status, Step, target_matrices, thin, training_edits
from lmkit.nll import sequence_nll
from lmkit.tokens import TokenBatches, context_length


class TaskVectorSettings(BaseConfig):
    """LoRA fine-tune on the forget set, then subtract α times the adapter."""

    alpha: float = Field(1.0, gt=0, description="α: multiple of the task vector subtracted (the strength).")
    rank: PositiveInt = Field(8, description="LoRA rank r of the task vector, per matrix.")
    lora_alpha: PositiveInt = Field(16, description="LoRA scaling numerator: ΔW = (lora_alpha / r)·B·A.")
    steps: PositiveInt = Field(150, description="Fine-tuning steps on the forget set.")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate of the LoRA fine-tune, constant.")
    batch_size: PositiveInt = Field(16, description="Forget documents per step.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient norm clipping.")
    seed: int = Field(0, description="Seeds the LoRA initialisation and the batch order.")


def task_vector_run(
    model,
    tokenizer,
    forget: list[str],
    retain: list[str],
    settings: TaskVectorSettings,
    strengths: list[float],
    status: Status = lambda message: None,
    on_step: Step | None = None,
) -> BaselineRun:
    """Fine-tune a LoRA on a copy of `model`; return −α·ΔW_lora as LoRA factors for each α in `strengths`."""
    del retain  # task arithmetic uses only the forget set
    if not forget:
        raise EditorError("the forget set is empty")
    alphas = sorted(set(strengths))
    if any(not math.isfinite(a) or a <= 0 for a in alphas):
        raise EditorError(f"the task-vector strength α must be positive, got {', '.join(f'{a:g}' for a in alphas)}")
    s = settings
    start = time.perf_counter()
    work = copy.deepcopy(model)
    targets = target_matrices(work)
    conv1d = {t.kind == "conv1d" for t in targets.values()}
    config = LoraConfig(
        target_modules=sorted(targets),
        r=s.rank,
        lora_alpha=s.lora_alpha,
        lora_dropout=0.0,
        bias="none",
        fan_in_fan_out=conv1d == {True},
    )
    stream = TokenBatches(tokenizer, forget, context_length(model), s.batch_size, s.seed)
    log = []
    status(f"task vector: fine-tuning a rank-{s.rank} LoRA for {s.steps} steps")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s.seed)
        peft_model = get_peft_model(work, config)
        params = [p for p in peft_model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=s.lr, weight_decay=0.0)
        peft_model.train()
        for step in range(1, s.steps + 1):
            nll, n = sequence_nll(peft_model, *stream.next())
            loss = nll.sum() / n.sum().clamp(min=1)
            if not torch.isfinite(loss):
                raise EditorError(f"the task-vector fine-tune diverged at step {step}; lower --set lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm)
            opt.step()
            log.append({"step": step, "loss": float(loss.detach())})
            if on_step is not None:
                on_step(step, s.steps, log[-1]["loss"])
    modules = dict(cast(nn.Module, peft_model.base_model.model).named_modules())
    vector: Factors = {}
    with torch.no_grad():
        for name in targets:
            layer = modules[name]
            a = layer.lora_A["default"].weight.detach().float().clone()
            b = layer.lora_B["default"].weight.detach().float().clone() * layer.scaling["default"]
            if torch.any(b != 0):
                vector[name] = (a, b)
    seconds = time.perf_counter() - start
    del peft_model, work, opt
    edits = {float(al): {n: (a.clone(), (-al * b).contiguous()) for n, (a, b) in vector.items()} for al in alphas}
    return BaselineRun(edits=edits, seconds=dict.fromkeys(edits, seconds), log=thin(log))


def _run(inputs: ForgetInputs, settings, strengths: list[float], progress: Progress) -> dict[float, Edit]:
    def on_step(step: int, total: int, loss: float) -> None:
        progress.step(step, total, f"loss {loss:.4f}")

    r = task_vector_run(inputs.model, inputs.tokenizer, inputs.forget, inputs.retain, settings, strengths, progress.status, on_step)
    return training_edits("task-vector", settings, "alpha", r)


TASK_VECTOR = Method(
    "task-vector",
    "negated LoRA task vector fine-tuned on the forget set",
    TaskVectorSettings,
    "alpha",
    (0.5, 1.0, 1.5, 2.0, 3.0, 4.0),
    _run,
    "A rank-`rank` LoRA was fine-tuned for `steps` steps on the forget set (next-token cross-entropy, lr {lr}); "
    "the edit subtracts alpha times its weight change (task-vector negation, Ilharco et al. 2023).",
    uses_retain=False,
)
