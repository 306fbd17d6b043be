"""ESTIMATED per-step cost of the GPU decomposition recipes on one H200 — an estimate, not a measurement.

    python benchmarks/recipe_cost.py

Each model is built from its public config on the meta device (nothing is allocated or downloaded),
the recipe's target patterns are resolved with the project's own `resolve_targets` (a pattern that
matches nothing is reported), and the CI function is built on meta from the recipe to count its
parameters. FLOPs and memory then follow the analytic model below; time assumes a fixed MFU of the
H200's 989 TFLOP/s dense bf16 peak. A last line checks the FLOP formula on the CPU tiny-toxic recipe
against torch's FLOP counter (benchmarks/decompose_speed.py).

FLOPs, with N = batch_size·seq_len tokens, F_lin = 2·(target matmul weights, lm_head included)·N,
F_att = 4·layers·seq_len·d_model·N and comp(f) = 2·f·N·ΣC·(d_in + d_out) for a routed fraction f:
  target pass (no grad)                F_lin + F_att
  CI function fwd + bwd                3·(2·P_ci_matmul·N + its attention)
  faithfulness Δ = W − VU, fwd + bwd   6·Σ C·d_in·d_out            (per step, not per token)
  each adversary inner step            2·F_lin + 3·F_att + 2·comp(f)   (fwd + backward to sources only)
  each reconstruction loss pass        2·F_lin + 3·F_att + 3·comp(f)   (frozen target: input grads only)
  f = (M + 1)/(2M) with uniform-k subset routing over M matrices, else 1.
Memory (bytes, one GPU; every term summed as if all were live at once): 18·(component + CI params)
[fp32 param, grad, AdamW m, v + a bf16 copy], + 8·component params [the faithfulness-warmup AdamW
moments stay allocated], + the frozen target in its checkpoint dtype (GPT-2's is fp32), + 6·Σ d_in·d_out
[faithfulness deltas], + 16·S·(ΣC + M) [persistent sources, Adam m, v and grad; S = N for
per_batch_per_position, seq_len for broadcast_across_batch], + activations of the loss graph, whose
P reconstruction passes are batched into one forward: 2·K·N·ΣC·P with K = 8 live bf16 width-ΣC
copies per pass (assumption), 3·N·Σf·Σ(d_in + d_out) + 2·N·Σ d_in [routed and cached matrix
inputs/outputs], N·P·layers·(6·d_ff + 16·d_model) [target], N·vocab·(10 + 10·P) [fp32 log-probs and
logits at the KL], 4·N·Σ(in + out) over the CI function's linears. On tiny-toxic under CPU bf16
autocast the tensors saved for backward came to 0.31 GB where these activation terms (less the KL
transients) give 0.40 GB, so the activation part errs high by about 30%.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForCausalLM, GPT2Config, GPTNeoXConfig, LlamaConfig, PretrainedConfig
from transformers.pytorch_utils import Conv1D

from decompose.ci_fns.global_transformer import GlobalTransformerConfig
from decompose.config import DecomposeConfig
from decompose.errors import DecompositionError
from decompose.losses import PersistentPgdReconConfig, PgdReconConfig
from decompose.train import select_targets
from editor.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
PEAK = 989e12  # H200 dense bf16 FLOP/s
HBM = 141e9
K_COPIES = 8  # live bf16 width-ΣC tensors per masked pass kept for backward (assumption)
TINY_MEASURED = 63.7e9  # torch FlopCounterMode, one tiny-toxic main step on CPU (no SDPA counted there)

# Public configs; dtype bytes are those of the released checkpoints (from_pretrained loads "auto").
MODELS: dict[str, tuple[PretrainedConfig, int]] = {
    "gpt2-small": (GPT2Config(n_embd=768, n_layer=12, n_head=12, vocab_size=50257, n_positions=1024), 4),
    "pythia-70m": (
        GPTNeoXConfig(
            hidden_size=512, num_hidden_layers=6, num_attention_heads=8, intermediate_size=2048, vocab_size=50304, rotary_pct=0.25, max_position_embeddings=2048
        ),
        2,
    ),
    "smollm2-135m": (
        LlamaConfig(
            hidden_size=576,
            num_hidden_layers=30,
            num_attention_heads=9,
            num_key_value_heads=3,
            intermediate_size=1536,
            vocab_size=49152,
            tie_word_embeddings=True,
            max_position_embeddings=8192,
        ),
        2,
    ),
    "llama-1b": (
        LlamaConfig(
            hidden_size=2048,
            num_hidden_layers=16,
            num_attention_heads=32,
            num_key_value_heads=8,
            intermediate_size=8192,
            vocab_size=128256,
            tie_word_embeddings=True,
            rope_theta=500000.0,
            max_position_embeddings=131072,
        ),
        2,
    ),
}


@dataclass
class Cost:
    name: str
    model_params: int
    matrices: int
    sum_c: int
    comp_params: int
    ci_params: int
    tokens: int
    flops: float
    memory: float
    parts: dict[str, float]


def linear_weights(module: nn.Module) -> tuple[int, int]:
    """(Σ weight numel, Σ in + out) over nn.Linear and Conv1D modules."""
    numel = io = 0
    for m in module.modules():
        if isinstance(m, (nn.Linear, Conv1D)):
            numel += m.weight.numel()
            io += sum(m.weight.shape)
    return numel, io


def estimate(cfg: DecomposeConfig, config: PretrainedConfig, target_bytes: int, attention: bool = True) -> Cost:
    """`attention=False` drops the attention FLOPs (torch's CPU flop counter does not see SDPA)."""
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    # select_targets → resolve_targets: the strict matcher training uses (raises if a pattern matches nothing).
    mats = [(t.name, t.d_in, t.d_out, c) for t, c in select_targets(model, cfg)]
    with torch.device("meta"):
        ci = cfg.ci_fn.build({n: (d_in, c) for n, d_in, _, c in mats})
    M, B, T = len(mats), cfg.batch_size, cfg.seq_len
    N = B * T
    L, d, V = config.num_hidden_layers, config.hidden_size, config.vocab_size
    d_ff = getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * d
    sum_c = sum(c for *_, c in mats)
    comp_params = sum(c * (i + o) for _, i, o, c in mats)
    io_sum = sum(i + o for _, i, o, _ in mats)
    ci_params = sum(p.numel() for p in ci.parameters())
    ci_mm, ci_io = linear_weights(ci)
    target_mm, _ = linear_weights(model)

    f_lin, f_att = 2 * target_mm * N, (4 * L * T * d * N if attention else 0)
    is_global = isinstance(cfg.ci_fn, GlobalTransformerConfig) and attention
    ci_att = 4 * cfg.ci_fn.n_blocks * T * cfg.ci_fn.d_model * N if is_global else 0

    def comp(f: float) -> float:
        return 2 * f * N * comp_params

    parts = {"target": f_lin + f_att, "ci": 3 * (2 * ci_mm * N + ci_att), "adv_inner": 0.0, "recon": 0.0}
    parts["faith"] = 6 * sum(c * i * o for _, i, o, c in mats) if cfg.faithfulness else 0.0
    fracs: list[float] = []
    adversary = 0.0
    for r in cfg.recon:
        f = (M + 1) / (2 * M) if r.subset else 1.0
        fracs.append(f)
        inner = {PersistentPgdReconConfig: "n_warmup_steps", PgdReconConfig: "n_steps"}.get(type(r))
        if inner:
            parts["adv_inner"] += getattr(r, inner) * (2 * f_lin + 3 * f_att + 2 * comp(f))
        parts["recon"] += 2 * f_lin + 3 * f_att + 3 * comp(f)
        if isinstance(r, PersistentPgdReconConfig):
            s = {"per_batch_per_position": N, "broadcast_across_batch": T, "single_source": 1}[r.scope]
            adversary += 16 * s * (sum_c + M)
    P = len(fracs)
    warm = cfg.faithfulness is not None and cfg.faithfulness.warmup_steps > 0
    mem = {
        "params+adam": 18 * (comp_params + ci_params) + (8 * comp_params if warm else 0),
        "target": target_bytes * sum(p.numel() for p in model.parameters()),
        "faith": 6 * sum(i * o for _, i, o, _ in mats) if cfg.faithfulness else 0,
        "adversary": adversary,
        "act_sumC": 2 * K_COPIES * N * sum_c * P,
        "act_comp_io": 3 * N * sum(fracs) * io_sum + 2 * N * sum(i for _, i, _, _ in mats),
        "act_target": N * P * L * (6 * d_ff + 16 * d),
        "act_vocab": N * V * (10 + 10 * P),
        "act_ci": 4 * N * ci_io,
    }
    return Cost(
        cfg.name,
        model.num_parameters(),
        M,
        sum_c,
        comp_params,
        ci_params,
        N,
        sum(parts.values()),
        sum(mem.values()),
        {**{f"F_{k}": v for k, v in parts.items()}, **{f"M_{k}": v for k, v in mem.items()}},
    )


def tiny_toxic(attention: bool) -> Cost:
    raw = json.loads((ROOT / "examples/models/tiny-toxic/config.json").read_text())
    config = LlamaConfig(**{k: v for k, v in raw.items() if k not in ("architectures", "transformers_version", "dtype")})
    return estimate(load_recipe(DecomposeConfig, "tiny-toxic", "decompose"), config, 4, attention)


def fmt(x: float) -> str:
    return f"{x / 1e6:,.1f}M" if x < 1e9 else f"{x / 1e9:,.2f}B"


def main() -> None:
    print(f"ESTIMATES, not measurements: analytic FLOPs and memory per main step on one H200 (bf16 peak {PEAK / 1e12:.0f} TFLOP/s, {HBM / 1e9:.0f} GB).\n")
    print(
        "| recipe | model params | matrices | ΣC | component params | CI-fn params | tokens/step "
        "| est. TFLOP/step | est. memory (GB) | est. s/step at 35% MFU (20% MFU) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    details = []
    for name, (config, tbytes) in MODELS.items():
        cfg = load_recipe(DecomposeConfig, name, "decompose")
        try:
            c = estimate(cfg, config, tbytes)
        except DecompositionError as e:
            print(f"| {name} | PATTERN MISMATCH: {e} |")
            continue
        fits = "" if c.memory <= HBM else " ⚠ > 141"
        print(
            f"| {name} | {fmt(c.model_params)} | {c.matrices} | {c.sum_c:,} | {fmt(c.comp_params)} "
            f"| {fmt(c.ci_params)} | {c.tokens:,} | {c.flops / 1e12:.1f} | {c.memory / 1e9:.0f}{fits} "
            f"| {c.flops / (0.35 * PEAK):.2f} ({c.flops / (0.20 * PEAK):.2f}) |"
        )
        details.append(c)
    print("\nBreakdown (TFLOP; GB):")
    for c in details:
        print(f"- {c.name}: " + ", ".join(f"{k[2:]} {v / 1e12:.1f}" if k.startswith("F_") else f"{k[2:]} {v / 1e9:.1f}" for k, v in c.parts.items()))
    t, no_att = tiny_toxic(True), tiny_toxic(False)
    print(
        f"\nSanity, tiny-toxic (CPU recipe, shared_mlp CI): analytic {t.flops / 1e9:.1f} GFLOP/step "
        f"({no_att.flops / 1e9:.1f} without attention, which torch's counter does not see on CPU) vs measured "
        f"{TINY_MEASURED / 1e9:.1f} → ratio {no_att.flops / TINY_MEASURED:.2f}."
    )


if __name__ == "__main__":
    main()
