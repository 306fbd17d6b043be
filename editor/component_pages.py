"""`editor components --html DIR`: an index of the most active components and one page per component with its
top-activating contexts (the firing token highlighted, every token shaded by the component's CI there).

Self-contained pages (inline style, no script, no network). Page names are `{module}-{index}.html`, so an
edit's model card can link each component it changed (`editor.card.model_card(component_link=...)`).
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path

import torch

from decompose.sigmoids import lower_leaky_hard_sigmoid
from decompose.stats import ci_batches
from editor.apply import ComponentRef
from lmkit.tokens import Batches

STYLE = """
body{font:14px/1.5 system-ui,sans-serif;margin:20px;color:#222;max-width:1100px}
table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:2px 8px;vertical-align:top}
.ctx{font-family:ui-monospace,monospace;white-space:pre-wrap} .fire{outline:2px solid #d00;font-weight:bold}
code{background:#f4f4f4;padding:0 3px}
"""


PAGE = "{module}-{index}.html"  # a component's page; the model card links `components/` + PAGE


def page_name(module: str, index: int) -> str:
    return PAGE.format(module=module, index=index)


@torch.no_grad()
def top_contexts(cm, ci_fn, batches: Batches, comps: list[ComponentRef], k: int = 8) -> dict[ComponentRef, list[dict]]:
    """Per component, the k (document, position) with the highest CI: {"ci", "tokens": ids of the row, "cis": its CI
    along the row, "position"}. BOS and padding are skipped."""
    best: dict[ComponentRef, list[tuple[float, list[int], list[float], int]]] = {c: [] for c in comps}
    for ids, mask, keep, z in ci_batches(cm, ci_fn, batches):
        for c in comps:
            g = lower_leaky_hard_sigmoid(z[c.module][..., c.index]).float() * keep  # (B, T)
            flat = g.flatten()
            top = flat.topk(min(k, flat.numel()))
            for v, i in zip(top.values.tolist(), top.indices.tolist()):
                if v <= 0:
                    continue
                row, pos = divmod(i, g.shape[1])
                n = int(mask[row].sum())
                best[c].append((v, ids[row, :n].tolist(), g[row, :n].tolist(), pos))
            best[c] = sorted(best[c], key=lambda t: -t[0])[:k]
    return {c: [{"ci": v, "tokens": t, "cis": g, "position": p} for v, t, g, p in rows] for c, rows in best.items()}


def _context_html(ctx: dict, tokenizer, before: int = 16, after: int = 6) -> str:
    p = ctx["position"]
    lo, hi = max(1, p - before), min(len(ctx["tokens"]), p + after + 1)
    spans = []
    for i in range(lo, hi):
        text = escape(tokenizer.decode([ctx["tokens"][i]]))
        alpha = min(1.0, max(0.0, ctx["cis"][i]))
        cls = ' class="fire"' if i == p else ""
        spans.append(f'<span{cls} style="background:rgba(255,140,0,{alpha:.2f})" title="CI {ctx["cis"][i]:.3f}">{text}</span>')
    return ("…" if lo > 1 else "") + "".join(spans) + ("…" if hi < len(ctx["tokens"]) else "")


def _tokens(ts: list[str]) -> str:
    return " ".join(f"<code>{escape(repr(t))}</code>" for t in ts)


def write_pages(directory: Path, rows: list[dict], contexts: dict[ComponentRef, list[dict]], tokenizer, source: str, tokens: int) -> None:
    """index.html and one page per row of `editor.explain.top_components` into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)

    def head(title: str) -> str:
        return f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{STYLE}</style></head><body>'

    lines = [
        head("components"),
        f"<h1>The {len(rows)} most active components on {escape(source)}</h1>",
        f"<p>{f'{tokens:,} tokens. ' if tokens else ''}Mean CI: mean causal importance per token; density: share of tokens where CI &gt; 0; fires on: the tokens with the highest total CI; promotes: the tokens whose log-probability drops most when the component alone is removed.</p>",
        "<table><tr><th>#</th><th>matrix</th><th>c</th><th>mean CI</th><th>density</th><th>fires on</th><th>promotes</th></tr>",
    ]
    for i, r in enumerate(rows, 1):
        name = page_name(r["module"], r["index"])
        lines.append(
            f'<tr><td>{i}</td><td><a href="{escape(name)}">{escape(r["module"])}</a></td><td>{r["index"]}</td><td>{r["mean_ci"]:.4f}</td>'
            f"<td>{r['density']:.4f}</td><td>{_tokens(r['fires_on'][:6])}</td><td>{_tokens(r['promotes'][:6])}</td></tr>"
        )
        ctxs = contexts.get(ComponentRef(r["module"], r["index"]), [])
        page = [
            head(f"{r['module']} #{r['index']}"),
            '<p><a href="index.html">all components</a></p>',
            f"<h1><code>{escape(r['module'])}</code> #{r['index']}</h1>",
            f"<p>mean CI {r['mean_ci']:.4f}, firing density {r['density']:.4f} on {escape(source)}</p>",
            f"<p>fires on: {_tokens(r['fires_on'])}</p><p>promotes: {_tokens(r['promotes'])}</p>",
            f"<h2>Top-activating contexts ({len(ctxs)})</h2>",
            "<p>The firing token is outlined; every token is shaded by this component's CI there.</p>",
            "<table><tr><th>CI</th><th>context</th></tr>",
            *[f'<tr><td>{c["ci"]:.3f}</td><td class="ctx">{_context_html(c, tokenizer)}</td></tr>' for c in ctxs],
            "</table></body></html>",
        ]
        (directory / name).write_text("\n".join(page), encoding="utf-8")
    lines.append("</table></body></html>")
    (directory / "index.html").write_text("\n".join(lines), encoding="utf-8")


def contexts_for(dec, tokenizer, texts: list[str], rows: list[dict], docs: int, batch_size: int = 64, k: int = 8) -> dict[ComponentRef, list[dict]]:
    """Top contexts of `rows` (from `top_components`) on the same seeded sample of `texts` it profiled."""
    from editor.explain import profile_batches

    batches, _ = profile_batches(dec.cm, tokenizer, texts, docs, batch_size)
    return top_contexts(dec.cm, dec.ci_fn, batches, [ComponentRef(r["module"], r["index"]) for r in rows], k)


def edit_pages(dec, tokenizer, manifest: dict, texts: list[str], source: str, docs: int = 256) -> Callable[[Path], None]:
    """A writer of the pages of the components an edit changed (stats measured on the forget set), for
    `editor.export.export_edit(pages=...)`; contexts come from the first `docs` sampled forget documents."""
    rows = [
        {
            "module": c["module"],
            "index": c["index"],
            "mean_ci": c.get("stats", {}).get("forget_mean_ci", 0.0),
            "density": c.get("stats", {}).get("forget_density", 0.0),
            "fires_on": c.get("fires_on", []),
            "promotes": c.get("promotes", []),
        }
        for c in manifest["components"]
    ]

    def write(directory: Path) -> None:
        contexts = contexts_for(dec, tokenizer, texts, rows, docs)
        write_pages(directory, rows, contexts, tokenizer, f"{source} (the forget set)", 0)

    return write
