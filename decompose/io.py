"""A finished decomposition on disk: components.safetensors (U, V, CI function) + decomposition.json.

Loading checks the target model's fingerprint (a hash of the decomposed weights), so components are
never applied to a model they were not trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from decompose.component_model import ComponentModel
from decompose.config import DecomposeConfig
from decompose.errors import DecompositionError
from decompose.targets import fingerprint, resolve_targets

FORMAT = "editor-vpd/1"
COMPONENTS = "components.safetensors"
MANIFEST = "decomposition.json"


def save_decomposition(cm: ComponentModel, ci_fn: nn.Module, manifest: dict, directory: Path) -> None:
    tensors = {}
    for n in cm.names:
        tensors[f"V.{n}"] = cm.comp(n).V.detach().float().cpu().contiguous()
        tensors[f"U.{n}"] = cm.comp(n).U.detach().float().cpu().contiguous()
    for k, v in ci_fn.state_dict().items():
        tensors[f"ci_fn.{k}"] = v.detach().float().cpu().contiguous()
    save_file(tensors, str(directory / COMPONENTS), metadata={"format": FORMAT})
    (directory / MANIFEST).write_text(json.dumps({"format": FORMAT, **manifest}, indent=1), encoding="utf-8")


@dataclass
class Decomposition:
    cm: ComponentModel
    ci_fn: nn.Module
    cfg: DecomposeConfig
    manifest: dict
    path: Path


def read_manifest(directory: Path) -> dict:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise DecompositionError(f"{directory} is not a decomposition (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DecompositionError(f"{path}: invalid JSON ({e.msg})") from None
    if manifest.get("format") != FORMAT:
        raise DecompositionError(f"{path}: unknown format {manifest.get('format')!r} (expected {FORMAT})")
    return manifest


def load_decomposition(model: nn.Module, directory: Path, device: torch.device | str = "cpu") -> Decomposition:
    """Attach a saved decomposition to `model`; a different model is an error naming both fingerprints."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    cfg = DecomposeConfig.model_validate(manifest["config"])
    modules = manifest["modules"]
    try:
        targets = resolve_targets(model, {m["name"]: m["C"] for m in modules})
    except DecompositionError as e:
        raise DecompositionError(f"decomposition {directory} does not fit this model: {e}") from None
    got = fingerprint([t for t, _ in targets])
    want = manifest["model"]["fingerprint"]
    if got != want:
        raise DecompositionError(
            f"decomposition {directory} was trained on model {want[:16]}… ({manifest['model'].get('source', '?')}), but this model is {got[:16]}…"
        )
    cm = ComponentModel(model, targets).to(device)
    ci_fn = cfg.ci_fn.build({n: (t.d_in, cm.C(n)) for n, t in cm.targets.items()}).to(device)
    _copy_tensors(cm, ci_fn, directory)
    return Decomposition(cm, ci_fn, cfg, manifest, directory)


def _copy_tensors(cm: ComponentModel, ci_fn: nn.Module, directory: Path) -> None:
    tensors = load_file(str(directory / COMPONENTS))
    with torch.no_grad():
        for n in cm.names:
            cm.comp(n).V.copy_(tensors[f"V.{n}"])
            cm.comp(n).U.copy_(tensors[f"U.{n}"])
    ci_fn.load_state_dict({k[len("ci_fn.") :]: v for k, v in tensors.items() if k.startswith("ci_fn.")})


def init_from_decomposition(cm: ComponentModel, ci_fn: nn.Module, cfg: DecomposeConfig, directory: Path) -> dict:
    """Start a decomposition from a saved one's U, V and CI function (a continuation, e.g. a fine-tune at a
    lower rate). The saved one must decompose the same matrices of the same model with the same C and CI
    function; returns its manifest."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    saved = {m["name"]: m["C"] for m in manifest["modules"]}
    mine = {n: cm.C(n) for n in cm.names}
    if saved != mine:
        raise DecompositionError(f"init_from {directory}: it decomposes other matrices or sizes ({len(saved)} matrices) than this recipe ({len(mine)})")
    if fingerprint(list(cm.targets.values())) != manifest["model"]["fingerprint"]:
        raise DecompositionError(f"init_from {directory} was trained on another model ({manifest['model'].get('source', '?')})")
    if DecomposeConfig.model_validate(manifest["config"]).ci_fn != cfg.ci_fn:
        raise DecompositionError(f"init_from {directory}: its CI function differs from this recipe's ci_fn")
    _copy_tensors(cm, ci_fn, directory)
    return manifest
