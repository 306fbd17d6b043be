"""Export an edit: the edited model, plus an exact PEFT LoRA adapter that turns the original into it.

Every edit is ΔW_l = B_l·A_l per matrix (`Edit.factors`; removing components S_l is A = [v_c]ᵀ,
B = −[u_c]), so a LoRA adapter with those factors and r = lora_alpha per module (scaling 1) reproduces
it without any truncation. The adapter is built with PEFT's own API on the model passed in and then unloaded, so the
model object, its modules and its weights come back exactly as they were.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers.pytorch_utils import Conv1D

from editor.apply import Factors
from editor.card import adapter_card, model_card
from editor.edit import Edit
from editor.errors import EditorError
from lmkit.faults import failpoint
from lmkit.files import atomic_dir


def _lora_config(model: nn.Module, factors: Factors) -> LoraConfig:
    modules = dict(model.named_modules())
    missing = sorted(set(factors) - set(modules))
    if missing:
        raise EditorError(f"the adapter names modules the model does not have: {', '.join(missing)}")
    kinds = {isinstance(modules[n], Conv1D) for n in factors}
    if len(kinds) > 1:
        # One LoraConfig has one fan_in_fan_out flag; a mix would rely on PEFT silently flipping it per module.
        raise EditorError("cannot export one LoRA adapter over both Conv1D and nn.Linear modules")
    ranks = {n: int(a.shape[0]) for n, (a, _) in factors.items()}
    # PEFT matches pattern keys as regexes with re.match(rf"(.*\.)?({key})$", module_name): escaping the full
    # name makes each key match exactly its module (layers.1 never matches layers.11).
    pattern = {re.escape(n): r for n, r in ranks.items()}
    r_max = max(ranks.values())
    return LoraConfig(
        target_modules=sorted(factors),  # a list of exact names: PEFT matches name == key or name ends in ".key"
        r=r_max,
        lora_alpha=r_max,
        rank_pattern=dict(pattern),
        alpha_pattern=dict(pattern),  # alpha = r per module → scaling 1
        lora_dropout=0.0,
        bias="none",
        use_rslora=False,
        fan_in_fan_out=kinds == {True},  # GPT-2 Conv1D stores (d_in, d_out); PEFT then transposes B·A itself
    )


def save_lora_adapter(base_model: nn.Module, factors: Factors, adapter_dir: Path, base_name_or_path: str) -> None:
    """Write a PEFT LoRA adapter whose merge adds B·A to each named module of `base_model`.

    `base_model` is wrapped in place and unloaded before returning (also on error); its weights, modules
    and requires_grad flags are left exactly as they were.
    """
    if not factors:
        raise EditorError("an empty edit: there is no adapter to export")
    config = _lora_config(base_model, factors)
    requires_grad = {n: p.requires_grad for n, p in base_model.named_parameters()}
    peft_model: Any = get_peft_model(base_model, config)  # PEFT's wrapper is typed loosely; used as documented
    try:
        modules = dict(peft_model.base_model.model.named_modules())
        with torch.no_grad():
            for name, (a, b) in factors.items():
                layer = modules[name]
                # lora_A is Linear(d_in, r), lora_B is Linear(r, d_out) for Conv1D too (PEFT reads Conv1D's
                # (d_in, d_out) weight shape and applies fan_in_fan_out at merge time), so no transpose here.
                layer.lora_A["default"].weight.copy_(a)
                layer.lora_B["default"].weight.copy_(b / layer.scaling["default"])
        # get_peft_model records the model's own name_or_path (often "" or a temp dir); record the given one.
        peft_model.peft_config["default"].base_model_name_or_path = base_name_or_path or None
        # Embeddings are never targeted; "auto" would look the base model up on the Hub to compare vocab sizes.
        peft_model.save_pretrained(str(adapter_dir), save_embedding_layers=False)
    finally:
        peft_model.base_model.unload()  # puts the original module objects back
        for n, p in base_model.named_parameters():
            p.requires_grad_(requires_grad[n])


def export_edit(
    out: Path, model: Any, tokenizer, edit: Edit, base_name_or_path: str = "", force: bool = False, pages: Callable[[Path], None] | None = None
) -> Path:
    """Write `model` with `edit` made, its tokenizer, the edit's LoRA adapter, edit.json and README.md to
    `out`, atomically (lmkit.files.atomic_dir). `model` itself is left unedited. `pages`, when given, writes
    the changed components' pages into `out/components/` and the model card links them."""
    manifest = edit.manifest()
    with atomic_dir(Path(out), "export", force=force) as tmp:
        applied = edit.apply(model)
        try:
            # transformers 5 always writes safetensors (safe_serialization is gone), so no flag is passed.
            model.save_pretrained(tmp)
        finally:
            applied.revert()
        failpoint("forget.export")
        tokenizer.save_pretrained(tmp)
        if edit.factors:  # an empty edit has no adapter: a LoRA of rank 0 cannot be saved
            save_lora_adapter(model, edit.factors, tmp / "adapter", base_name_or_path)
            # PEFT writes a template card; ours names the base model and says how to load the adapter.
            (tmp / "adapter" / "README.md").write_text(adapter_card(manifest, base_name_or_path), encoding="utf-8")
        (tmp / "edit.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        link = None
        if pages is not None and manifest["components"]:
            from editor.component_pages import PAGE

            pages(tmp / "components")
            link = "components/" + PAGE
        (tmp / "README.md").write_text(model_card(manifest, link), encoding="utf-8")
    return Path(out)
