"""What an edit removed and why: the `edit.json` manifest and the model card, built from a ForgetPlan."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from decompose.io import COMPONENTS, Decomposition
from decompose.targets import fingerprint
from editor import __version__
from editor.forget import ForgetPlan, ForgetSettings

FORMAT = "editor-edit/1"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def edit_manifest(
    plan: ForgetPlan, dec: Decomposition, settings: ForgetSettings, model_source: str, forget_source: str, retain_source: str
) -> dict:
    import transformers

    removed = []
    for cand in plan.selected:
        comp = dec.cm.comp(cand.module)
        norm = float(comp.U[cand.index].detach().norm() * comp.V[:, cand.index].detach().norm())  # ‖u_c v_cᵀ‖_F
        key = next(r for r in plan.removed if r.module == cand.module and r.index == cand.index)
        removed.append({**cand.to_dict(), "norm": norm, **plan.explain[key]})
    return {
        "format": FORMAT,
        "model": {
            "source": model_source,
            "fingerprint_before": dec.manifest["model"]["fingerprint"],
            "fingerprint_after": fingerprint(list(dec.cm.targets.values())),
        },
        "decomposition": {"path": str(dec.path), "sha256": file_sha256(dec.path / COMPONENTS), "name": dec.manifest.get("name")},
        "data": {
            "forget": {"source": forget_source, **plan.data["forget"]},
            "retain": {"source": retain_source, **plan.data["retain"]},
        },
        "settings": settings.model_dump(mode="json"),
        "candidates_ranked": plan.candidates,
        "removed_per_module": plan.per_module(),
        "removed": removed,
        "metrics": plan.metrics,
        "search": {
            "base": plan.search.base.to_dict(),
            "final": plan.search.final.to_dict(),
            "curve": [p.to_dict() for p in plan.search.curve],
        },
        "warnings": plan.warnings,
        "seconds": round(plan.seconds, 2),
        "versions": {"editor": __version__, "torch": torch.__version__, "transformers": transformers.__version__},
    }


def metrics_rows(metrics: dict[str, dict[str, float]]) -> str:
    """Markdown table rows `| name | before | after | change |` for a model card."""
    return "\n".join(
        f"| {k} | {b:.4f} | {metrics['after'][k]:.4f} | {metrics['after'][k] - b:+.4f} |" for k, b in metrics["before"].items()
    )


def model_card(manifest: dict) -> str:
    m = manifest["metrics"]
    rows = metrics_rows(m)
    per_module = "\n".join(f"| `{name}` | {n} |" for name, n in manifest["removed_per_module"].items())
    d = manifest["data"]
    return f"""---
tags: [editor, unlearning, parameter-decomposition]
base_model: {manifest['model']['source']}
---

# Edited model: {len(manifest['removed'])} rank-1 components removed

This checkpoint is `{manifest['model']['source']}` with {len(manifest['removed'])} rank-1 weight
components subtracted (W ← W − Σ u_c v_cᵀ), made with `editor forget` {manifest['versions']['editor']}.
It loads with plain `AutoModelForCausalLM.from_pretrained`. `adapter/` holds the same edit as a PEFT
LoRA adapter for the original model; `edit.json` lists every removed component and the data used.

## How the components were chosen

1. The decomposition `{manifest['decomposition']['name']}` (sha256 {manifest['decomposition']['sha256'][:16]}…)
   splits every attention and MLP matrix into rank-1 components with a learned causal-importance
   function.
2. Components were ranked by how much more causally important they are on the forget set
   ({d['forget']['documents']} documents from `{d['forget']['source']}`) than on retained data
   ({d['retain']['documents']} documents from `{d['retain']['source']}`): {manifest['candidates_ranked']} candidates.
3. Each candidate was removed in turn from the real weights and kept only if it raised the forget-set
   cross-entropy while the mean KL(original ‖ edited) on retained tokens stayed within
   {manifest['settings']['max_retain_kl']} nats.

## Removed components per matrix

| matrix | removed |
|---|---|
{per_module}

## Measured (mean NLL per token, nats; on the data used for the edit)

| | before | after | change |
|---|---|---|---|
{rows}

Held-out evaluations belong in `editor eval`; these figures are on the selection data.
"""
