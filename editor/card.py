"""The model card (`README.md`) of an exported edit, from its `edit.json` manifest: one card for every method.

Hub-style YAML metadata first (base model by its portable name, library, tags), then what changed, how
the method chose it (the method's own paragraph, filled with the settings that ran), the changed
matrices, the changed components with their tokens, and the measured NLL before and after.
"""

from __future__ import annotations

from typing import Any

from editor.methods import get_method


def metrics_rows(metrics: dict[str, dict[str, float]]) -> str:
    """Markdown table rows `| name | before | after | change |`."""
    return "\n".join(f"| {k} | {b:.4f} | {metrics['after'][k]:.4f} | {metrics['after'][k] - b:+.4f} |" for k, b in metrics["before"].items())


def _how(manifest: dict[str, Any]) -> str:
    text = get_method(manifest["method"]).how
    try:
        return text.format(**manifest["settings"])
    except (KeyError, IndexError, ValueError):
        return text


def _cell(tokens: list[str], n: int = 6) -> str:
    return " ".join(f"`{t.strip() or repr(t)}`".replace("|", "\\|") for t in tokens[:n]) or "–"


def component_rows(components: list[dict[str, Any]], link: str | None = None) -> str:
    rows = []
    for c in components:
        name = f"`{c['module']}` #{c['index']}"
        if link:
            name = f"[{name}]({link.format(module=c['module'], index=c['index'])})"
        rows.append(f"| {name} | {c['change']} | {c.get('norm', 0.0):.3g} | {_cell(c.get('fires_on', []))} | {_cell(c.get('promotes', []))} |")
    return "\n".join(rows)


def model_card(manifest: dict[str, Any], component_link: str | None = None) -> str:
    """The card text. `component_link` (e.g. "components/{module}-{index}.html") links each component to its page."""
    m, d = manifest, manifest["data"]
    base = m["model"]["source"]
    tags = ["editor", "unlearning", m["method"]] + (["parameter-decomposition"] if m.get("decomposition") else [])
    changed = "\n".join(f"| `{n}` | {c['rank']} | {c['delta_frobenius']:.4g} |" for n, c in m["changed_modules"].items())
    parts = [
        "---",
        f"base_model: {base}",
        "library_name: transformers",
        "tags:",
        *[f"- {t}" for t in tags],
        "---",
        "",
        f"# {base}, edited: {m['summary']}",
        "",
        f"`{base}` after `editor forget --method {m['method']}` (editor {m['versions'].get('editor', '?')}): {m['summary']}.",
        "It loads with plain `AutoModelForCausalLM.from_pretrained`. `adapter/` holds the same weight change as a PEFT",
        "LoRA adapter for the original model (exact: merging it reproduces this checkpoint); `edit.json` records the",
        "settings, the data hashes and the method's log.",
        "",
        f"Forget set: {d['forget']['documents']} documents from `{d['forget']['source']}`; retain set: "
        f"{d['retain']['documents']} documents from `{d['retain']['source']}`"
        + ("" if get_method(m["method"]).uses_retain else " (not used by this method)")
        + ".",
        "",
        "## How the change was chosen",
        "",
        _how(m),
        "",
        "## Changed matrices (attention and MLP only; embeddings and norms are untouched)",
        "",
        "| matrix | rank of ΔW | ‖ΔW‖_F |",
        "|---|---|---|",
        changed or "| – | 0 | 0 |",
    ]
    if m["components"]:
        parts += [
            "",
            f"## Changed components ({len(m['components'])})",
            "",
            "| component | change | ‖u vᵀ‖_F | fires on | promotes |",
            "|---|---|---|---|---|",
            component_rows(m["components"], component_link),
        ]
    parts += [
        "",
        "## Measured (mean NLL per token, nats; on the data used for the edit)",
        "",
        "| | before | after | change |",
        "|---|---|---|---|",
        metrics_rows(m["metrics"]),
        "",
        "Held-out evaluations belong in `editor eval`; these figures are on the edit's own data.",
        "",
    ]
    return "\n".join(parts)
