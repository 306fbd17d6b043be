"""Recipes: YAML files validated against a config class, with one-level `include:` and `--set` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from editor.errors import EditorError
from editor.paths import RECIPES
from lmkit.texts import read_text

C = TypeVar("C", bound=BaseModel)


def find_recipe(name_or_path: str, kind: str) -> Path:
    """A YAML path as given, or a shipped recipe name under recipes/<kind>/."""
    path = Path(name_or_path).expanduser()
    if path.suffix in {".yaml", ".yml"}:
        if not path.is_file():
            raise EditorError(f"no such recipe file: {path}")
        return path
    shipped = RECIPES / kind / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    known = sorted(p.stem for p in (RECIPES / kind).glob("*.yaml"))
    raise EditorError(f"unknown {kind} recipe '{name_or_path}' (known: {', '.join(known) or 'none'})")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(read_text(path)) or {}
    except yaml.YAMLError as e:
        raise EditorError(f"{path}: invalid YAML ({' '.join(str(e).split())})") from None
    if not isinstance(data, dict):
        raise EditorError(f"{path}: a recipe must be a mapping, got {type(data).__name__}")
    base = data.pop("include", None)
    if base is None:
        return data
    if not isinstance(base, str) or not (path.parent / base).is_file():
        raise EditorError(f"{path}: include: {base} is not a recipe file beside it")
    merged = _read_yaml(path.parent / base)
    _deep_update(merged, data)
    return merged


def _deep_update(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_update(into[key], value)
        else:
            into[key] = value


def parse_override(item: str) -> tuple[list[str], Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise EditorError(f"--set expects key=value, got '{item}'")
    return key.split("."), yaml.safe_load(raw) if raw else ""


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> None:
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise EditorError(f"--set {item}: '{k}' is not a section")
        node[keys[-1]] = value


def validate(cls: type[C], data: dict[str, Any], origin: str, name_of=None) -> C:
    """`cls` from `data`, or one EditorError line naming each bad field (`name_of(loc)` says how the user typed it)."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = tuple(str(p) for p in err["loc"])
            field = (name_of(loc) if name_of else None) or ".".join(loc) or "(top level)"
            problems.append(f"{field}: {err['msg']}")
        raise EditorError(f"invalid {origin}: " + "; ".join(problems)) from None


def read_recipe(name_or_path: str, kind: str, overrides: list[str] | None = None) -> tuple[Path, dict[str, Any]]:
    """The recipe's file and its data with the overrides applied, not yet validated (no heavy imports)."""
    path = find_recipe(name_or_path, kind)
    data = _read_yaml(path)
    apply_overrides(data, overrides or [])
    return path, data


def load_recipe(cls: type[C], name_or_path: str, kind: str, overrides: list[str] | None = None) -> C:
    path, data = read_recipe(name_or_path, kind, overrides)
    given = {tuple(parse_override(o)[0]): o for o in overrides or []}

    def name_of(loc: tuple[str, ...]) -> str | None:
        hit = next((o for keys, o in given.items() if loc[: len(keys)] == keys), None)
        return f"--set {hit}" if hit else None

    return validate(cls, data, f"recipe {path}", name_of)


def dump_recipe(cfg: BaseModel) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
