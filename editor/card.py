"""The model cards (`README.md`) of an exported edit, from its `edit.json` manifest: one card for every method.

Both cards open with the YAML metadata the Hugging Face Hub reads (`base_model` by its portable name,
`library_name`, `pipeline_tag`, tags such as `unlearning`), written with a YAML library so any name is
quoted correctly. The model's card then says what changed, how the method chose it (the method's own
paragraph, filled with the settings that ran), the changed matrices, the changed components with their
tokens, and the measured NLL before and after, as markdown tables. The adapter's card (`adapter/README.md`)
says how to load the adapter onto its base model.

A base model given as a local folder is recorded relative to the card (`../model`): that is not a Hub id,
so it goes into the text and not into `base_model`.
"""

from __future__ import annotations

from typing import Any

import yaml

from editor.methods import get_method
from editor.model_io import is_local_path


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


def metadata_block(base: str, library: str, tags: list[str]) -> list[str]:
    """The `---`-fenced YAML metadata of a Hub model card."""
    meta: dict[str, Any] = {}
    if not is_local_path(base):
        meta["base_model"] = base
    meta.update({"library_name": library, "pipeline_tag": "text-generation", "tags": tags})
    return ["---", *yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).splitlines(), "---"]


def card_tags(manifest: dict[str, Any]) -> list[str]:
    return ["editor", "unlearning", "machine-unlearning", manifest["method"]] + (["parameter-decomposition"] if manifest.get("decomposition") else [])


def model_card(manifest: dict[str, Any], component_link: str | None = None) -> str:
    """The card text. `component_link` (e.g. "components/{module}-{index}.html") links each component to its page."""
    m, d = manifest, manifest["data"]
    base = m["model"]["source"]
    changed = "\n".join(f"| `{n}` | {c['rank']} | {c['delta_frobenius']:.4g} |" for n, c in m["changed_modules"].items())
    parts = [
        *metadata_block(base, "transformers", card_tags(m)),
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


def adapter_card(manifest: dict[str, Any], base: str) -> str:
    """`adapter/README.md`: the PEFT LoRA adapter of the edit, on `base` (its portable name, relative to the adapter)."""
    m = manifest
    where = f"the local folder `{base}` (relative to this adapter)" if is_local_path(base) else f"`{base}`"
    load = base if not is_local_path(base) else "path/to/base-model"
    parts = [
        *metadata_block(base, "peft", card_tags(m) + ["lora"]),
        "",
        f"# LoRA adapter: {m['summary']}",
        "",
        f"The weight change of `editor forget --method {m['method']}` as a PEFT LoRA adapter for {where}: {m['summary']}",
        f"(rank {sum(c['rank'] for c in m['changed_modules'].values())} over {len(m['changed_modules'])} matrices, scaling 1).",
        "Merging it reproduces the edited checkpoint in the folder above exactly; `../edit.json` and `../README.md` say what",
        "changed and how it was measured.",
        "",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM",
        "",
        f'base = AutoModelForCausalLM.from_pretrained("{load}")',
        'model = PeftModel.from_pretrained(base, "adapter")      # or .merge_and_unload() for a plain model',
        "```",
        "",
    ]
    return "\n".join(parts)
