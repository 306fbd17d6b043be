"""Attribution graphs: values against a hand-computed two-matrix model, incoming sums against a finite-difference
total on a tiny Llama, pruning, and the faithfulness check."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from decompose.component_model import ComponentModel
from decompose.targets import resolve_targets
from editor.graph import attribution_graph
from editor.graph_faith import faithfulness
from editor.graph_prune import influence, prune
from tests.fixtures import tiny_model

# --- a model of two decomposed matrices, per position: e = E[id]; h = relu(W1 e); y = W2 h; logits = O y ---


class TwoMatrix(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(4, 3)
        self.w1 = nn.Linear(3, 4, bias=False)
        self.w2 = nn.Linear(4, 3, bias=False)
        self.out = nn.Linear(3, 5, bias=False)
        g = torch.Generator().manual_seed(0)
        for p in self.parameters():
            p.data = torch.randn(p.shape, generator=g, dtype=torch.float64)

    def get_input_embeddings(self):
        return self.embed

    def forward(self, input_ids, logits_to_keep=0):
        y = self.w2(torch.relu(self.w1(self.embed(input_ids))))
        return SimpleNamespace(logits=self.out(y))


def two_matrix():
    model = TwoMatrix()
    cm = ComponentModel(model, resolve_targets(model, {"w1": 2, "w2": 2}), output="tensor").double()
    g = torch.Generator().manual_seed(1)
    for n in cm.names:
        cm.comp(n).V.data = torch.randn(cm.comp(n).V.shape, generator=g, dtype=torch.float64)
        cm.comp(n).U.data = torch.randn(cm.comp(n).U.shape, generator=g, dtype=torch.float64)
    ci = {"w1": torch.tensor([[[0.5, 0.9], [0.3, 0.0]]]), "w2": torch.tensor([[[0.7, 0.2], [0.0, 0.6]]])}
    return model, cm, (lambda inputs: {n: v.double() for n, v in ci.items()}), ci


def test_attributions_match_the_hand_computed_two_matrix_case():
    model, cm, ci_fn, ci = two_matrix()
    ids = torch.tensor([[2, 3]])
    target = 4
    raw = attribution_graph(cm, ci_fn, ids, target, threshold=0.0)
    keys = [n.key() for n in raw.nodes]
    assert keys == ["token:0:2", "token:1:3", "w1:0:0", "w1:0:1", "w1:1:0", "w2:0:0", "w2:0:1", "w2:1:1", "logit:1:4"]

    E, W1, W2, Wout = model.embed.weight.data, model.w1.weight.data, model.w2.weight.data, model.out.weight.data
    V1, U1 = cm.comp("w1").V.data, cm.comp("w1").U.data
    V2, U2 = cm.comp("w2").V.data, cm.comp("w2").U.data
    D1, D2 = W1 - (V1 @ U1).T, W2 - (V2 @ U2).T  # Δ of each matrix (d_out, d_in)

    def attr(src: str, dst: str) -> float:
        return float(raw.attr[keys.index(dst), keys.index(src)])

    for p in range(2):
        e = E[ids[0, p]]
        a1 = e @ V1
        z = W1 @ e
        relu_grad = (z > 0).double()
        h = torch.relu(z)
        a2 = h @ V2
        g1, g2 = ci["w1"][0, p].double(), ci["w2"][0, p].double()
        # w1 component i → w2 component j: through U1, the relu, and V2 (no other component between them).
        for i in range(2):
            for j in range(2):
                if g1[i] > 0 and g2[j] > 0:
                    want = float((U1[i] * relu_grad) @ V2[:, j] * a1[i] * g1[i])
                    assert attr(f"w1:{p}:{i}", f"w2:{p}:{j}") == pytest.approx(want, rel=1e-5)
        # token → w2 component: only through w1's Δ (its components are cut); times the embedding itself.
        for j in range(2):
            if g2[j] > 0:
                want = float(((D1 @ e) * relu_grad) @ V2[:, j])
                assert attr(f"token:{p}:{int(ids[0, p])}", f"w2:{p}:{j}") == pytest.approx(want, rel=1e-5)
        # token → w1 component: a1 = e·V1 is linear in e, so the attribution is a1 itself.
        for i in range(2):
            if g1[i] > 0:
                assert attr(f"token:{p}:{int(ids[0, p])}", f"w1:{p}:{i}") == pytest.approx(float(a1[i]), rel=1e-5)
        if p == 1:  # the logit sits at the last position
            for j in range(2):
                if g2[j] > 0:
                    assert attr(f"w2:{p}:{j}", "logit:1:4") == pytest.approx(float(U2[j] @ Wout[target] * a2[j] * g2[j]), rel=1e-5)
            # w1 component → logit directly: through w2's Δ only.
            want = float((U1[0] * relu_grad) @ (D2.T @ Wout[target]) * a1[0] * g1[0])
            assert attr("w1:1:0", "logit:1:4") == pytest.approx(want, rel=1e-5)
    # Nothing crosses positions in this model, and nothing flows backwards.
    assert attr("w1:0:0", "w2:1:1") == 0 and attr("w2:0:0", "logit:1:4") == 0 and attr("w2:0:0", "w1:0:0") == 0


def _tiny_llama_cm():
    model = tiny_model("llama").double()
    cm = ComponentModel(model, resolve_targets(model, {"model.layers.*.self_attn.[qkvo]_proj": 6, "model.layers.*.mlp.*_proj": 6})).double()
    g = torch.Generator().manual_seed(2)
    fixed = {}
    for n in cm.names:
        nn.init.normal_(cm.comp(n).V, std=0.05, generator=g)
        nn.init.normal_(cm.comp(n).U, std=0.05, generator=g)
        fixed[n] = torch.rand(1, 6, cm.C(n), generator=g, dtype=torch.float64) * (torch.rand(1, 6, cm.C(n), generator=g) > 0.4)
    return model, cm, (lambda inputs: fixed)


def _stopped_total(cm, ids, raw, target_node, eps: float) -> float:
    """d/dε of the target with every component's recorded activation scaled by (1 + ε·g) as a constant, and the
    token embeddings by (1 + ε): Σ over all sources of ∂target/∂a_s · a_s · g_s, by central differences."""
    active = {n: sorted({nd.index for nd in raw.nodes if nd.module == n}) for n in cm.names}
    record: dict[str, torch.Tensor] = {}

    def run(scale: float, recording: bool):
        handles = []

        def make(name):
            V, U = cm.comp(name).V.detach()[:, active[name]], cm.comp(name).U.detach()[active[name]]
            gsel = raw.ci[name].double()[:, active[name]]

            def hook(module, args, out):
                a = args[0] @ V
                if recording:
                    record[name] = a.detach()
                    return out
                return (record[name] * (1 + scale * gsel)) @ U + (out - a @ U)

            return hook

        for n in cm.names:
            if active[n]:
                handles.append(cm.targets[n].module.register_forward_hook(make(n)))
        handles.append(cm.model.get_input_embeddings().register_forward_hook(lambda m, a, out: out * (1 + scale)))
        captured = {}
        if target_node.kind == "component":
            j = active[target_node.module].index(target_node.index)
            V = cm.comp(target_node.module).V.detach()[:, active[target_node.module]]
            handles.append(
                cm.targets[target_node.module].module.register_forward_hook(lambda m, a, o: captured.setdefault("a", (a[0] @ V)[0, target_node.position, j]))
            )
        try:
            with torch.no_grad():
                logits = cm.model(input_ids=ids).logits
        finally:
            for h in handles:
                h.remove()
        return float(logits[0, -1, target_node.index]) if target_node.kind == "logit" else float(captured["a"])

    run(0.0, True)
    return (run(eps, False) - run(-eps, False)) / (2 * eps)


def test_incoming_edges_sum_to_the_total_gradient_attribution():
    model, cm, ci_fn = _tiny_llama_cm()
    ids = torch.tensor([[1, 17, 42, 5, 63, 8]])
    raw = attribution_graph(cm, ci_fn, ids, target_token=11, threshold=0.0, chunk=7)  # small chunks: batching is exercised
    comps = [i for i, n in enumerate(raw.nodes) if n.kind == "component"]
    late = [i for i in comps if raw.nodes[i].module.startswith("model.layers.1.mlp.down") and raw.nodes[i].position >= 3][:2]
    for t in [raw.target, *late]:
        # ε not smaller: eager attention's softmax runs in float32 even in a float64 model.
        want = _stopped_total(cm, ids, raw, raw.nodes[t], 1e-3)
        got = float(raw.attr[t].sum())
        assert got == pytest.approx(want, rel=2e-3), raw.nodes[t]
        assert float(raw.attr[t].abs().sum()) > 0


def test_prune_keeps_the_paths_that_carry_the_attribution():
    # 0, 1: tokens; 2 → 4 strongly, 3 → 4 weakly; 4 → 5 (target); 3 also feeds 5 a little.
    attr = torch.zeros(6, 6)
    attr[2, 0], attr[3, 1] = 1.0, 1.0
    attr[4, 2], attr[4, 3] = 9.0, 1.0
    attr[5, 4], attr[5, 3] = 0.9, -0.1
    inf = influence(attr, 5)
    assert inf[5] == 1 and inf[4] == pytest.approx(0.9) and inf[2] == pytest.approx(0.81) and inf[3] == pytest.approx(0.09 + 0.1)
    assert inf[0] == pytest.approx(0.81) and inf[1] == pytest.approx(0.19)
    p = prune(attr, 5, node_fraction=0.8, edge_fraction=0.9)
    assert p.nodes == [0, 2, 4, 5]
    assert sorted((s, t) for s, t, _ in p.edges) == [(0, 2), (2, 4), (4, 5)]
    everything = prune(attr, 5, node_fraction=1.0, edge_fraction=1.0)
    assert everything.nodes == list(range(6)) and len(everything.edges) == 6
    assert prune(attr, 5, 0.8, 0.9, keep={3}).nodes == [0, 2, 3, 4, 5]  # an edited node stays, whatever its influence


def test_faithfulness_with_every_node_kept_is_the_ci_masked_model(shipped_tokenizer):
    model, cm, ci_fn = _tiny_llama_cm()
    ids = torch.tensor([[1, 17, 42, 5, 63, 8]])
    raw = attribution_graph(cm, ci_fn, ids, target_token=11, threshold=0.0)
    comps = [n for n in raw.nodes if n.kind == "component"]
    f = faithfulness(cm, ids, raw, comps, 11, shipped_tokenizer, pgd_steps=3)
    assert f.graph.logit == pytest.approx(f.all_ci.logit, rel=1e-6)
    assert f.full.logit == pytest.approx(float(cm.run(ids)[0, -1, 11]), rel=1e-6)  # the graph's logits: the unmasked model's
    assert f.pgd.prob <= f.graph.prob + 1e-12 and f.pgd_all.prob <= f.all_ci.prob + 1e-12
    none = faithfulness(cm, ids, raw, [], 11, shipped_tokenizer, pgd_steps=0)
    assert none.graph.logit != pytest.approx(f.graph.logit)
    assert [c["nodes"] for c in f.curve][-1] == len(comps)
