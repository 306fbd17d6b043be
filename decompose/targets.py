"""Which weight matrices of a causal LM get decomposed: glob patterns over module names → TargetMatrix views."""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, cast

import torch
from torch import Tensor, nn
from transformers.pytorch_utils import Conv1D

from decompose.errors import DecompositionError


def module_key(name: str) -> str:
    """A module name as an nn.ModuleDict key (keys may not contain dots)."""
    return name.replace(".", "-")


@contextmanager
def forward_hooks(hooks: Iterable[tuple[nn.Module, Callable]], *, with_kwargs: bool = False) -> Iterator[None]:
    """Forward hooks on (module, hook) pairs for the context only: the model is itself again after it, even on an error."""
    handles = [module.register_forward_hook(hook, with_kwargs=with_kwargs) for module, hook in hooks]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@dataclass(frozen=True)
class TargetMatrix:
    """One decomposable matrix, always seen in nn.Linear layout (d_out, d_in) whatever the module stores."""

    name: str
    module: nn.Module
    kind: Literal["linear", "conv1d"]
    d_in: int
    d_out: int

    def weight(self) -> Tensor:
        """The (d_out, d_in) weight; a view of the parameter, so gradients and in-place edits reach the module."""
        w = cast(Tensor, self.module.weight)
        # transformers' Conv1D computes x @ W + b with W stored (d_in, d_out).
        return w.T if self.kind == "conv1d" else w

    def bias(self) -> Tensor | None:
        """The (d_out,) bias, or None when the module has none."""
        return getattr(self.module, "bias", None)

    def set_weight(self, new: Tensor) -> None:
        """Write a (d_out, d_in) matrix back in the module's own layout, dtype and device."""
        if tuple(new.shape) != (self.d_out, self.d_in):
            raise ValueError(f"{self.name}: expected a ({self.d_out}, {self.d_in}) weight, got {tuple(new.shape)}")
        with torch.no_grad():
            # copy_ casts dtype/device and keeps the Parameter object (optimizers and hooks hold references to it).
            cast(Tensor, self.module.weight).copy_(new.T if self.kind == "conv1d" else new)


# Roles → glob over `model.named_modules()` names, checked against transformers 5.x tiny models.
_LLAMA_LIKE = {
    "q": "model.layers.*.self_attn.q_proj",
    "k": "model.layers.*.self_attn.k_proj",
    "v": "model.layers.*.self_attn.v_proj",
    "o": "model.layers.*.self_attn.o_proj",
    "gate": "model.layers.*.mlp.gate_proj",
    "up": "model.layers.*.mlp.up_proj",
    "down": "model.layers.*.mlp.down_proj",
}
DEFAULT_PATTERNS: dict[str, dict[str, str]] = {
    "llama": dict(_LLAMA_LIKE),
    "mistral": dict(_LLAMA_LIKE),
    "qwen2": dict(_LLAMA_LIKE),
    "gpt2": {
        "qkv": "transformer.h.*.attn.c_attn",  # fused q,k,v (Conv1D)
        "o": "transformer.h.*.attn.c_proj",
        "up": "transformer.h.*.mlp.c_fc",
        "down": "transformer.h.*.mlp.c_proj",
    },
    "gpt_neox": {
        "qkv": "gpt_neox.layers.*.attention.query_key_value",  # fused q,k,v
        "o": "gpt_neox.layers.*.attention.dense",
        "up": "gpt_neox.layers.*.mlp.dense_h_to_4h",
        "down": "gpt_neox.layers.*.mlp.dense_4h_to_h",
    },
    "phi3": {
        "qkv": "model.layers.*.self_attn.qkv_proj",  # fused q,k,v
        "o": "model.layers.*.self_attn.o_proj",
        "gate_up": "model.layers.*.mlp.gate_up_proj",  # fused gate and up
        "down": "model.layers.*.mlp.down_proj",
    },
}


def default_patterns(model: nn.Module) -> list[str]:
    """The attention and MLP patterns for the model's architecture (by `config.model_type`)."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in DEFAULT_PATTERNS:
        raise DecompositionError(
            f"no default target patterns for model_type {model_type!r}; supported: {', '.join(sorted(DEFAULT_PATTERNS))}. Give the module patterns explicitly."
        )
    return list(DEFAULT_PATTERNS[model_type].values())


RESIDUAL_WRITER_ROLES = ("o", "down")  # the matrices whose output is added to the residual stream


def is_residual_writer(model: nn.Module, name: str) -> bool:
    """Whether module `name` writes into the residual stream (attention output or MLP down projection),
    by the architecture's default patterns; False for an architecture without defaults."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    roles = DEFAULT_PATTERNS.get(model_type or "", {})
    return any(fnmatch.fnmatchcase(name, roles[r]) for r in RESIDUAL_WRITER_ROLES if r in roles)


def _embedding_modules(model: nn.Module) -> list[nn.Module]:
    """Input and output embeddings; either getter may be missing or unimplemented on odd models."""
    found = []
    for getter in ("get_input_embeddings", "get_output_embeddings"):
        try:
            module = getattr(model, getter)()
        except (AttributeError, NotImplementedError):
            continue
        if module is not None:
            found.append(module)
    return found


def _as_target(name: str, module: nn.Module) -> TargetMatrix:
    if isinstance(module, Conv1D):
        d_in, d_out = cast(Tensor, module.weight).shape
        return TargetMatrix(name, module, "conv1d", int(d_in), int(d_out))
    linear = cast(nn.Linear, module)
    return TargetMatrix(name, module, "linear", linear.in_features, linear.out_features)


def resolve_targets(model: nn.Module, patterns: dict[str, int]) -> list[tuple[TargetMatrix, int]]:
    """Each module matched by a pattern, with that pattern's C, in `named_modules` order.

    Strict on purpose: a silently skipped or doubly decomposed matrix would give a wrong decomposition
    that still trains, so every ambiguity is a DecompositionError.
    """
    if not patterns:
        raise DecompositionError("no target patterns given; nothing would be decomposed")
    for pattern, c in patterns.items():
        if isinstance(c, bool) or not isinstance(c, int) or c < 1:
            raise DecompositionError(f"pattern {pattern!r}: C must be a positive integer, got {c!r}")

    embeddings = _embedding_modules(model)
    # Tied weights (gpt2's lm_head shares wte's Parameter) are excluded by Parameter identity as well.
    embedding_weights = {id(getattr(m, "weight", None)) for m in embeddings}
    linear_names: list[str] = []
    hits: dict[str, int] = {p: 0 for p in patterns}
    out: list[tuple[TargetMatrix, int]] = []
    for name, module in model.named_modules():
        is_linear = isinstance(module, (nn.Linear, Conv1D))
        is_embedding = any(module is m for m in embeddings) or (is_linear and id(module.weight) in embedding_weights)
        if is_linear and not is_embedding:
            linear_names.append(name)
        matched = [p for p in patterns if fnmatch.fnmatchcase(name, p)]
        if not matched:
            continue
        if len(matched) > 1:
            raise DecompositionError(
                f"module {name!r} is matched by more than one pattern: {', '.join(map(repr, matched))}; each matrix may be decomposed only once"
            )
        pattern = matched[0]
        if is_embedding:
            raise DecompositionError(
                f"pattern {pattern!r} matches {name!r} ({type(module).__name__}), an input or output "
                "embedding; embeddings and the unembedding are never decomposed"
            )
        if not is_linear:
            raise DecompositionError(
                f"pattern {pattern!r} matches {name!r} of type {type(module).__name__}; only nn.Linear and "
                "Conv1D modules can be decomposed, so narrow the pattern to the weight-matrix modules"
            )
        hits[pattern] += 1
        out.append((_as_target(name, module), patterns[pattern]))

    for pattern, n in hits.items():
        if n == 0:
            near = difflib.get_close_matches(pattern, linear_names, n=5, cutoff=0.5)
            hint = f"near matches: {', '.join(near)}" if near else (f"no near matches; linear modules include: {', '.join(linear_names[:5]) or '(none)'}")
            raise DecompositionError(f"pattern {pattern!r} matches no module; {hint}")
    return out


def fingerprint(targets: list[TargetMatrix]) -> str:
    """sha256 over names, shapes and float32 values of every target's weight and bias.

    Lets a saved decomposition refuse to load onto a model whose decomposed weights differ.
    """
    h = hashlib.sha256()
    for t in targets:
        h.update(f"{t.name}\0{t.d_out}x{t.d_in}\0".encode())
        tensors = [("w", t.weight())]
        bias = t.bias()
        if bias is not None:
            tensors.append(("b", bias))
        for tag, x in tensors:
            # Canonical bytes: Linear layout, float32, contiguous, on CPU — independent of storage dtype/device.
            data = x.detach().to(device="cpu", dtype=torch.float32).contiguous()
            h.update(tag.encode() + b"\0")
            h.update(data.numpy().tobytes())
    return h.hexdigest()
