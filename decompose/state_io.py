"""Nested state (dicts of tensors, numbers, lists) ↔ one safetensors file + one JSON file, with no pickle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

SEP = "/"  # module names contain dots, never slashes


def flatten(obj: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Split `obj` into its tensors (by path) and a JSON-able skeleton with {"__tensor__": path} leaves."""
    tensors: dict[str, torch.Tensor] = {}
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().clone().contiguous()
        return tensors, {"__tensor__": prefix}
    if isinstance(obj, dict):
        skeleton = {}
        for k, v in obj.items():
            sub, skel = flatten(v, f"{prefix}{SEP}{k}" if prefix else str(k))
            tensors.update(sub)
            skeleton[str(k) if not isinstance(k, int) else f"__int__{k}"] = skel
        return tensors, skeleton
    if isinstance(obj, (list, tuple)):
        skeleton_list = []
        for i, v in enumerate(obj):
            sub, skel = flatten(v, f"{prefix}{SEP}{i}")
            tensors.update(sub)
            skeleton_list.append(skel)
        return tensors, skeleton_list
    return tensors, obj


def unflatten(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__tensor__"}:
            return tensors[skeleton["__tensor__"]]
        return {(int(k[len("__int__") :]) if k.startswith("__int__") else k): unflatten(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten(v, tensors) for v in skeleton]
    return skeleton


def save_state(obj: Any, directory: Path, stem: str) -> None:
    tensors, skeleton = flatten(obj)
    save_file(tensors, str(directory / f"{stem}.safetensors"))
    (directory / f"{stem}.json").write_text(json.dumps(skeleton), encoding="utf-8")


def load_state(directory: Path, stem: str) -> Any:
    tensors = load_file(str(directory / f"{stem}.safetensors"))
    skeleton = json.loads((directory / f"{stem}.json").read_text(encoding="utf-8"))
    return unflatten(skeleton, tensors)
