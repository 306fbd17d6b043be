"""Attribution graph of one prompt: which components fire, and how much each one feeds the next and the target.

Nodes are the prompt's input tokens, every (matrix, position, component) whose causal importance g exceeds a
threshold, and the target logit at the last position. For a source s and a target t (t later in the network),

    attr(s → t) = (∂a_t/∂a_s)* · a_s · g_s

with a = x·v_c the component's activation, the forward pass through every component unmasked plus Δ (the
original model, exactly), and * meaning gradients stopped through all other components: each matrix's
output is y = a_leaf·U + (x·Wᵀ + b − a·U), where a_leaf is a detached copy of a. The derivative then follows
only paths through the Δ parts, attention, norms and the residual stream, never through another component.
A token's attribution is Σ_d ∂a_t/∂e_d · e_d over its embedding e (g = 1).

Targets are batched: the prompt is repeated once per target in a chunk, and one backward of the sum of each
row's own target gives every target's gradient at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from decompose.sigmoids import lower_leaky_hard_sigmoid


@dataclass(frozen=True)
class Node:
    """`kind` "token" (module None, index = token id), "component" or "logit" (index = token id)."""

    kind: str
    position: int
    module: str | None
    index: int
    ci: float = 1.0  # g for a component, 1 otherwise
    act: float = 0.0  # a = x·v_c for a component, the logit for the target

    def key(self) -> str:
        if self.kind == "component":
            return f"{self.module}:{self.position}:{self.index}"
        return f"{self.kind}:{self.position}:{self.index}"


@dataclass
class RawGraph:
    """Every node above the CI threshold and the dense attribution matrix attr[t, s] between them."""

    nodes: list[Node]
    attr: Tensor  # (N, N) float32: row = target, column = source
    logits: Tensor  # (V,) at the last position, the unedited forward
    ci: dict[str, Tensor] = field(default_factory=dict)  # (T, C) per module

    @property
    def target(self) -> int:
        return len(self.nodes) - 1  # the logit node is last


def prompt_ci(cm, ci_fn, ids: Tensor) -> tuple[dict[str, Tensor], Tensor, dict[str, Tensor]]:
    """(g per module (T, C), last-position logits (V,), a = x·V per module (T, C)) of one prompt `ids` (1, T),
    from one forward pass."""
    with torch.no_grad(), cm.caching_inputs() as inputs:
        logits = cm.model(input_ids=ids).logits[0, -1].float()
    with torch.no_grad():
        g = {n: lower_leaky_hard_sigmoid(z)[0].float() for n, z in ci_fn({n: inputs[n] for n in cm.names}).items()}
        acts = {n: inputs[n][0].float() @ cm.comp(n).V.detach().float() for n in cm.names}
    return g, logits, acts


class _Leaves:
    """Hooks for the stopped-gradient forward: each matrix's activations a (attached) and their detached leaves."""

    def __init__(self, cm, active: dict[str, Tensor]):
        self.cm = cm
        self.active = active  # module → component indices that get a leaf; the rest stay in the Δ-like remainder
        self.acts: dict[str, Tensor] = {}
        self.leaves: dict[str, Tensor] = {}
        self.embed: Tensor | None = None
        self.handles: list = []

    def _module_hook(self, name: str):
        comp, sel = self.cm.comp(name), self.active[name]
        V0, U0 = comp.V.detach()[:, sel], comp.U.detach()[sel]

        def hook(module, args, kwargs, out):
            x = args[0] if args else next(v for v in kwargs.values() if isinstance(v, Tensor))
            V, U = V0.to(x.dtype), U0.to(x.dtype)
            a = x @ V
            leaf = a.detach().requires_grad_(True)
            self.acts[name], self.leaves[name] = a, leaf
            return leaf @ U + (out - a @ U)

        return hook

    def _embed_hook(self, module, args, out):
        self.embed = out.detach().requires_grad_(True)
        return self.embed

    def __enter__(self) -> _Leaves:
        for name in self.active:
            t = self.cm.targets[name]
            self.handles.append(t.module.register_forward_hook(self._module_hook(name), with_kwargs=True))
        self.handles.append(self.cm.model.get_input_embeddings().register_forward_hook(self._embed_hook))
        return self

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()


def component_nodes(g: dict[str, Tensor], threshold: float, acts: dict[str, Tensor]) -> list[Node]:
    """The (module, position, component) nodes with g > threshold, in module (forward) order, then position, then index."""
    nodes = []
    for name, v in g.items():
        for p, c in (v > threshold).nonzero().tolist():
            nodes.append(Node("component", p, name, c, float(v[p, c]), float(acts[name][p, c])))
    return nodes


@dataclass
class _Sources:
    """The component nodes as sources, per module: their columns in attr, positions, indices among the
    module's active components, and a_s · g_s."""

    active: dict[str, Tensor]  # module → the component indices that are a node somewhere in the prompt
    cols: dict[str, Tensor]
    pos: dict[str, Tensor]
    local: dict[str, Tensor]
    scale: dict[str, Tensor]

    @staticmethod
    def of(comps: list[Node], first_col: int, acts: dict[str, Tensor], g: dict[str, Tensor]) -> _Sources:
        by_module: dict[str, list[int]] = {}
        for j, n in enumerate(comps):
            by_module.setdefault(str(n.module), []).append(j)
        active = {m: torch.tensor(sorted({comps[j].index for j in js})) for m, js in by_module.items()}
        out = _Sources(active, {}, {}, {}, {})
        for m, js in by_module.items():
            where = {int(c): k for k, c in enumerate(active[m])}
            out.cols[m] = torch.tensor(js) + first_col
            out.pos[m] = torch.tensor([comps[j].position for j in js])
            idx = torch.tensor([comps[j].index for j in js])
            out.local[m] = torch.tensor([where[int(c)] for c in idx])
            out.scale[m] = (acts[m] * g[m])[out.pos[m], idx]
        return out


def attribution_graph(cm, ci_fn, ids: Tensor, target_token: int, threshold: float = 0.1, chunk: int = 256) -> RawGraph:
    """Nodes and attr[t, s] for the prompt `ids` (1, T) and the logit of `target_token` at its last position.

    Gradients are stopped through every component that is a node at some position; components below the
    threshold everywhere stay, like Δ, part of the path (cheaper, and they carry next to nothing)."""
    T = ids.shape[1]
    g, logits, acts = prompt_ci(cm, ci_fn, ids)
    comps = component_nodes(g, threshold, acts)
    tokens = [Node("token", p, None, int(ids[0, p])) for p in range(T)]
    logit = Node("logit", T - 1, None, target_token, 1.0, float(logits[target_token]))
    nodes = tokens + comps + [logit]
    src = _Sources.of(comps, T, acts, g)
    N = len(nodes)
    attr = torch.zeros(N, N)
    rank = {m: i for i, m in enumerate(cm.names)}
    buckets = max(1, min(4, len(rank)))
    # Targets by (position, stage): a target at position p needs only the first p + 1 tokens, and one in the
    # first stages of the network only the forward up to the stage's last matrix. The logit is the last stage.
    groups: dict[tuple[int, int], list[int]] = {}
    for r in range(T, N):
        n = nodes[r]
        stage = buckets if n.kind == "logit" else rank[str(n.module)] * buckets // len(rank)
        groups.setdefault((n.position, stage), []).append(r)
    last = {k: [m for m in cm.names if rank[m] * buckets // len(rank) == k][-1] for k in range(buckets)}
    for (p, stage), group in sorted(groups.items()):
        for start in range(0, len(group), chunk):
            rows = group[start : start + chunk]
            attr[rows] = _target_block(cm, ids[:, : p + 1], nodes, rows, last.get(stage), src, N)
    return RawGraph(nodes, attr, logits, g)


class _Stop(Exception):
    pass


def _target_block(cm, ids: Tensor, nodes: list[Node], rows: list[int], stop: str | None, src: _Sources, N: int) -> Tensor:
    """attr[rows] for targets that all sit at the last position of `ids` and at or before module `stop` (None:
    the logit): the forward runs on `ids` only, and stops after `stop`."""
    B, P = len(rows), ids.shape[1]
    with torch.enable_grad(), _Leaves(cm, src.active) as run:
        handle = None
        if stop is not None:

            def halt(module, args, out):
                raise _Stop

            handle = cm.targets[stop].module.register_forward_hook(halt)
        out = None
        try:
            out = cm.model(input_ids=ids.expand(B, P).contiguous(), logits_to_keep=1).logits
        except _Stop:
            pass
        finally:
            if handle is not None:
                handle.remove()
        total = torch.zeros(())
        for r_b, r in enumerate(rows):  # each row's own target (B is small: one term per target)
            n = nodes[r]
            if n.kind == "logit":
                assert out is not None
                total = total + out[r_b, -1, n.index]
        picks: dict[str, list[tuple[int, int]]] = {}
        for r_b, r in enumerate(rows):
            n = nodes[r]
            if n.kind == "component":
                m = str(n.module)
                picks.setdefault(m, []).append((r_b, int((src.active[m] == n.index).nonzero())))
        for m, pc in picks.items():  # one gather per module
            b, c = torch.tensor([q[0] for q in pc]), torch.tensor([q[1] for q in pc])
            total = total + run.acts[m][b, -1, c].sum()
        names = [m for m in src.active if m in run.leaves]
        assert run.embed is not None
        grads = torch.autograd.grad(total, [run.embed] + [run.leaves[m] for m in names], allow_unused=True)
    block = torch.zeros(B, N)
    if grads[0] is not None:
        block[:, :P] = (grads[0] * run.embed.detach()).sum(-1).float()
    for m, gr in zip(names, grads[1:]):
        if gr is None:
            continue
        ok = src.pos[m] < P
        block[:, src.cols[m][ok]] = gr[:, src.pos[m][ok], src.local[m][ok]].float() * src.scale[m][ok]
    return block
