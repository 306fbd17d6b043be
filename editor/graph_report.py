"""`editor graph` as a library call: attribution graph(s) of one prompt, pruned, checked, laid out, as JSON.

The JSON (format editor-graph/1) is what the HTML page and the PNG draw: per graph its nodes (with a layout:
x = token position, y = a row per matrix in forward order, input tokens at the bottom, the target logit on
top), its kept edges with signed attributions, and the faithfulness check; with an edit, a "before" and an
"after" graph of the same prompt and target, the edited components marked in both.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from editor.errors import EditorError
from editor.graph import Node, attribution_graph
from editor.graph_faith import faithfulness
from editor.graph_prune import prune

FORMAT = "editor-graph/1"


@dataclass(frozen=True)
class GraphSettings:
    threshold: float = 0.1  # a component is a node where its causal importance g exceeds this
    node_fraction: float = 0.8  # keep the nodes holding this share of the influence on the target
    edge_fraction: float = 0.95  # then the edges holding this share of the kept nodes' attribution
    max_nodes: int = 200  # at most this many nodes besides the tokens and the target
    pgd_steps: int = 20  # steps of the adversarial check on the dropped nodes
    explain: bool = True  # promoted tokens of each kept component (one forward on the prompt each)


def short_module(name: str) -> str:
    """ "model.layers.2.mlp.down_proj" → "L2 mlp.down_proj"."""
    layer = re.search(r"\.(\d+)\.", name)
    tail = ".".join(name.split(".")[-2:])
    return f"L{layer.group(1)} {tail}" if layer else tail


def target_id(tokenizer, token: str | None, logits) -> int:
    """The token id of `--target-token` (exactly one token), else the model's top prediction."""
    if token is None:
        return int(logits.argmax())
    ids = tokenizer.encode(token, add_special_tokens=False)
    if len(ids) != 1:
        tid = tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id:
            return tid
        pieces = " ".join(repr(tokenizer.decode([i])) for i in ids)
        raise EditorError(f"--target-token {token!r} is {len(ids)} tokens ({pieces}); give one token, e.g. {tokenizer.decode(ids[:1])!r}")
    return ids[0]


def _node_json(n: Node, tokenizer, tokens: list[str], influence: float, marked: dict) -> dict:
    d = {"id": n.key(), "kind": n.kind, "position": n.position, "influence": influence}
    if n.kind == "component":
        d |= {"module": n.module, "index": n.index, "ci": n.ci, "act": n.act, "label": f"{short_module(str(n.module))} #{n.index}"}
        d["edited"] = marked.get((n.module, n.index))
    elif n.kind == "token":
        d |= {"token": tokens[n.position], "label": tokens[n.position]}
    else:
        d |= {"token": tokenizer.decode([n.index]), "label": f"logit {tokenizer.decode([n.index])!r}", "logit": n.act}
    return d


def one_graph(dec, tokenizer, ids, target: int, s: GraphSettings, marked: dict, title: str) -> dict:
    """Attribution graph of `ids` (1, T) to `target`, pruned, with its faithfulness check, as JSON."""
    from editor.apply import ComponentRef
    from editor.explain import promoted_tokens

    cm = dec.cm
    raw = attribution_graph(cm, dec.ci_fn, ids, target, s.threshold)
    # Edited components are marked where the pruning keeps them, not forced in: an edit of hundreds of
    # components would fill the graph. Counted instead.
    edited_nodes = [i for i, n in enumerate(raw.nodes) if n.kind == "component" and (n.module, n.index) in marked]
    pr = prune(raw.attr, raw.target, s.node_fraction, s.edge_fraction, s.max_nodes)
    kept = [raw.nodes[i] for i in pr.nodes]
    order = pr.influence.argsort(descending=True).tolist()
    ranked = [raw.nodes[i] for i in order if raw.nodes[i].kind == "component"]
    faith = faithfulness(cm, ids, raw, kept, target, tokenizer, s.pgd_steps, ranked=ranked)
    tokens = [tokenizer.decode([int(t)]) for t in ids[0]]
    nodes = [_node_json(raw.nodes[i], tokenizer, tokens, float(pr.influence[i]), marked) for i in pr.nodes]
    comps = sorted({(str(n.module), n.index) for n in kept if n.kind == "component"})
    if s.explain and comps:
        refs = [ComponentRef(m, c) for m, c in comps]
        lowered = promoted_tokens(cm, [(ids, torch.ones_like(ids))], refs, tokenizer, k=5)
        for d in nodes:
            if d["kind"] == "component":
                d["promotes"] = lowered[ComponentRef(d["module"], d["index"])]
    for d in nodes:
        if d["kind"] == "component":
            g = raw.ci[d["module"]][:, d["index"]]
            d["fires_on"] = [tokens[p] for p in (g > s.threshold).nonzero().flatten().tolist()][:8]
    key = [n.key() for n in raw.nodes]
    probs = torch.softmax(raw.logits, -1)
    return {
        "title": title,
        "target": {"id": target, "token": tokenizer.decode([target]), "prob": float(probs[target]), "logit": float(raw.logits[target])},
        "top": [{"token": tokenizer.decode([int(i)]), "prob": float(probs[i])} for i in probs.topk(5).indices],
        "counts": {
            "nodes_above_threshold": len(raw.nodes) - len(tokens) - 1,
            "edges_nonzero": int((raw.attr != 0).sum()),
            "nodes": len(nodes),
            "edges": len(pr.edges),
            "edited_above_threshold": len(edited_nodes),
            "edited_kept": len(set(edited_nodes) & set(pr.nodes)),
        },
        "nodes": nodes,
        "edges": [{"source": key[a], "target": key[b], "attr": v} for a, b, v in pr.edges],
        "faithfulness": faith.to_dict() | {"verdict": faith.verdict()},
    }


def layout(graphs: list[dict], module_order: list[str]) -> list[str]:
    """Give every node x (position, spread within its cell) and y (row); the same rows for every graph. Returns the row labels."""
    used = {d["module"] for g in graphs for d in g["nodes"] if d["kind"] == "component"}
    modules = [m for m in module_order if m in used]
    row = {m: i + 1 for i, m in enumerate(modules)}
    for g in graphs:
        cells: dict[tuple[int, int], list[dict]] = {}
        for d in g["nodes"]:
            d["row"] = 0 if d["kind"] == "token" else len(modules) + 1 if d["kind"] == "logit" else row[d["module"]]
            cells.setdefault((d["row"], d["position"]), []).append(d)
        for (_, p), ds in cells.items():
            ds.sort(key=lambda d: d.get("index", 0))
            width = min(0.8, 0.22 * len(ds))
            for k, d in enumerate(ds):
                d["x"] = p + (0.0 if len(ds) == 1 else width * (k / (len(ds) - 1) - 0.5))
                d["y"] = d["row"]
    return ["tokens", *[short_module(m) for m in modules], "target"]


def build_graph(dec, tokenizer, prompt: str, target_token: str | None = None, settings: GraphSettings | None = None, edit_dir: Path | None = None) -> dict:
    """The whole `editor graph` result (JSON-ready); with `edit_dir`, the graphs before and after that edit."""
    from lmkit.tokens import context_length

    s = settings or GraphSettings()
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    if ids.shape[1] < 1:
        raise EditorError("--prompt is empty")
    limit = context_length(dec.cm.model)
    if ids.shape[1] > limit:
        raise EditorError(f"--prompt is {ids.shape[1]} tokens; the model's context is {limit}")
    with torch.no_grad():
        logits = dec.cm.model(input_ids=ids).logits[0, -1]
    target = target_id(tokenizer, target_token, logits)
    result: dict = {"format": FORMAT, "prompt": prompt, "tokens": [tokenizer.decode([int(t)]) for t in ids[0]], "settings": asdict(s)}
    if edit_dir is None:
        graphs = [one_graph(dec, tokenizer, ids, target, s, {}, "graph")]
    else:
        from editor.graph_edit import edit_delta, edited, edited_keys
        from editor.model_io import read_edit_record

        manifest = read_edit_record(edit_dir, "--edit")
        marked = edited_keys(manifest)
        delta = edit_delta(dec.cm, manifest, edit_dir)
        before = one_graph(dec, tokenizer, ids, target, s, marked, "before the edit")
        with edited(dec.cm, manifest, delta):
            after = one_graph(dec, tokenizer, ids, target, s, marked, "after the edit")
        graphs = [before, after]
        result["edit"] = {
            "path": str(edit_dir),
            "method": manifest.get("method"),
            "summary": manifest.get("summary"),
            "components": [{"module": m, "index": i, "change": c} for (m, i), c in marked.items()],
            "target_prob_before": before["target"]["prob"],
            "target_prob_after": after["target"]["prob"],
        }
    result["rows"] = layout(graphs, dec.cm.names)
    result["graphs"] = graphs
    return result
