"""The user's own HF model with forward hooks that route chosen matrices through their components.

No module is replaced: hooks are attached inside a context manager and removed on exit, so the same
model object can be evaluated, saved and edited. For a module with input x, original output
o = x·Wᵀ + b, component activations a = x·V, mask m (…, C) and Δ-mask m_Δ (…), the masked output is

    y = (a ⊙ m)·U + m_Δ · x·Δᵀ + b,   Δ = W − (V·U)ᵀ
      = (a ⊙ (m − m_Δ))·U + m_Δ · (o − b) + b

The second form reuses the output the module already computed, so the Δ path costs nothing extra;
with every mask at 1 it returns o exactly. Routed-off tokens keep o and are never computed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import cast

from torch import Tensor, nn

from decompose.components import Components
from decompose.fused import masked_components
from decompose.targets import TargetMatrix, forward_hooks, module_key


@dataclass
class ModuleMask:
    """How one module runs in a masked pass. Tensors cover the (batch, pos) of the pass."""

    mask: Tensor  # (B, T, C) or broadcastable
    delta: Tensor | None = None  # (B, T) or broadcastable; None = no Δ path
    routed: Tensor | None = None  # (B, T) bool; None = every token through the components


def _input_of(args: tuple, kwargs: dict) -> Tensor:
    if args:
        return args[0]
    for value in kwargs.values():  # modules called with keyword inputs
        if isinstance(value, Tensor):
            return value
    raise RuntimeError("decomposed module called without a tensor input")


class ComponentModel(nn.Module):
    """Holds the components of every target matrix; the wrapped model itself stays frozen."""

    def __init__(self, model: nn.Module, targets: list[tuple[TargetMatrix, int]], output: str = "logits"):
        """`output`: "logits" for a HF causal LM fed token ids (B, T); "tensor" for a plain module fed (…, d)."""
        super().__init__()
        self.model = model
        self.output = output
        # One hand-written autograd node per masked module (decompose.fused); False: plain autograd on
        # the same formula, kept as the reference the fused path is tested against.
        self.fused = True
        self._frozen = False
        for p in model.parameters():
            p.requires_grad_(False)
        self.targets: dict[str, TargetMatrix] = {t.name: t for t, _ in targets}
        self.components = nn.ModuleDict({module_key(t.name): Components(t.d_in, t.d_out, c) for t, c in targets})

    @property
    def names(self) -> list[str]:
        return list(self.targets)

    def comp(self, name: str) -> Components:
        return cast(Components, self.components[module_key(name)])

    def C(self, name: str) -> int:
        return self.comp(name).C

    def deltas(self) -> dict[str, Tensor]:
        """Δ = W − (V·U)ᵀ per matrix, with gradient into U and V."""
        return {n: t.weight().detach() - self.comp(n).weight() for n, t in self.targets.items()}

    def _hooks(self, hooks: dict[str, Callable]) -> AbstractContextManager[None]:
        """Hooks on target matrices by name, for a `with` block."""
        return forward_hooks(((self.targets[n].module, h) for n, h in hooks.items()), with_kwargs=True)

    @contextmanager
    def frozen_components(self) -> Iterator[None]:
        """Masked passes within the context treat U and V as constants: for a backward that only wants
        gradients of masks or sources (the PGD ascent), so no pass computes U and V gradients nobody reads."""
        before, self._frozen = self._frozen, True
        try:
            yield
        finally:
            self._frozen = before

    @contextmanager
    def caching_inputs(self) -> Iterator[dict[str, Tensor]]:
        """Record each target matrix's input (detached) during an ordinary forward."""
        cache: dict[str, Tensor] = {}

        def make(name: str):
            def hook(module, args, kwargs, output):
                cache[name] = _input_of(args, kwargs).detach()

            return hook

        with self._hooks({n: make(n) for n in self.targets}):
            yield cache

    def _masked_output(self, name: str, x: Tensor, out: Tensor, spec: ModuleMask) -> Tensor:
        comp = self.comp(name)
        bias = self.targets[name].bias()
        if self.fused:
            lead = out.shape[:-1]
            idx = None if spec.routed is None else spec.routed.expand(lead).reshape(-1).nonzero().squeeze(1)
            y = masked_components(
                x.reshape(-1, x.shape[-1]),
                out.reshape(-1, out.shape[-1]),
                spec.mask.expand(*lead, comp.C).reshape(-1, comp.C),
                None if spec.delta is None else spec.delta.expand(lead).reshape(-1),
                comp.V.detach() if self._frozen else comp.V,
                comp.U.detach() if self._frozen else comp.U,
                bias,
                idx,
            )
            return y.view_as(out)
        if spec.routed is None:
            return self._combine(comp, x, out, bias, spec.mask, spec.delta)
        lead = out.shape[:-1]
        idx = spec.routed.expand(lead).reshape(-1).nonzero().squeeze(1)

        def pick(t: Tensor) -> Tensor:  # the routed rows of a (lead..., feat) tensor, broadcast first
            t = t.expand(*lead, *t.shape[len(lead) :])
            return t.reshape(-1, *t.shape[len(lead) :]).index_select(0, idx)

        flat_out = out.reshape(-1, out.shape[-1])
        y = self._combine(
            comp,
            pick(x),
            flat_out.index_select(0, idx),
            bias,
            pick(spec.mask),
            None if spec.delta is None else pick(spec.delta),
        )
        return flat_out.index_copy(0, idx, y.to(flat_out.dtype)).view_as(out)

    @staticmethod
    def _combine(comp: Components, x: Tensor, out: Tensor, bias: Tensor | None, m: Tensor, m_delta: Tensor | None) -> Tensor:
        a = x @ comp.V.to(x.dtype)
        if m_delta is None:
            y = (a * m) @ comp.U.to(x.dtype)
            return y if bias is None else y + bias
        m_delta = m_delta.unsqueeze(-1)
        y = (a * (m - m_delta)) @ comp.U.to(x.dtype)
        base = out if bias is None else out - bias
        y = y + m_delta * base
        return y if bias is None else y + bias

    @contextmanager
    def masked(self, specs: dict[str, ModuleMask]) -> Iterator[None]:
        """Within the context, modules named in `specs` run through their masked components."""
        unknown = set(specs) - set(self.targets)
        assert not unknown, f"masks for unknown modules: {sorted(unknown)}"

        def make(name: str):
            def hook(module, args, kwargs, output):
                return self._masked_output(name, _input_of(args, kwargs), output, specs[name])

            return hook

        with self._hooks({n: make(n) for n in specs}):
            yield

    def lead(self, batch: Tensor) -> tuple[int, ...]:
        """The token dims of a batch: (B, T) of token ids, or all but the feature dim of a tensor input."""
        return tuple(batch.shape) if self.output == "logits" else tuple(batch.shape[:-1])

    def _call(self, batch: Tensor) -> Tensor:
        return self.model(input_ids=batch).logits if self.output == "logits" else self.model(batch)

    def run(self, batch: Tensor, specs: dict[str, ModuleMask] | None = None) -> Tensor:
        """The model's output (logits), unchanged without specs, masked with them."""
        if specs is None:
            return self._call(batch)
        with self.masked(specs):
            return self._call(batch)
