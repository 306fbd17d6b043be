"""Decomposition training speed on a recipe: steps/s, tokens/s, peak memory, FLOP per step, FLOP/s vs peak.

    python benchmarks/decompose_speed.py                        # the fixed benchmark configuration
    python benchmarks/decompose_speed.py --recipe tiny-toxic --model tiny-toxic
    python benchmarks/decompose_speed.py --compare              # optimised path vs the plain-autograd reference
    python benchmarks/decompose_speed.py --compare --cpu-time   # the same by process CPU time (shared machines)

Prints one JSON object. Compare ratios within one run: these CPUs are shared and noisy. `--compare`
alternates short rounds of the reference path (`Decomposer.set_fast(False)`: same math, plain autograd)
and the optimised one in one process and reports both rates, their ratio and how far apart their loss
curves are (same parameters, seeds, batches and masks); `--cpu-time` measures
process CPU time instead of wall time, which other processes on the machine disturb much less.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode


def matmul_peak_flops(device: str, dtype: torch.dtype, n: int = 1024, seconds: float = 2.0) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
        if device == "cuda":
            torch.cuda.synchronize()
    return 2 * n**3 * count / (time.perf_counter() - start)


def bench_model(vocab: int = 2048):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
    )
    return LlamaForCausalLM(config).eval()


def main(argv: list[str] | None = None) -> dict:
    from decompose.config import DecomposeConfig
    from decompose.train import Decomposer
    from editor.recipe import load_recipe

    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default="bench-llama2-d128")
    ap.add_argument("--model", default=None, help="Model name/path (default: the benchmark's random 2-layer Llama).")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--compare", action="store_true", help="A/B the optimised path against the reference path.")
    ap.add_argument("--rounds", type=int, default=6, help="--compare: alternating rounds per path.")
    ap.add_argument("--round-steps", type=int, default=3, help="--compare: steps per round.")
    ap.add_argument("--cpu-time", action="store_true", help="--compare: rate by process CPU time instead of wall time.")
    args = ap.parse_args(argv)

    cfg = load_recipe(DecomposeConfig, args.recipe, "decompose", args.overrides)
    if cfg.threads and args.device == "cpu":
        torch.set_num_threads(cfg.threads)
    if args.model:
        from editor.model_io import load_model

        model, _ = load_model(args.model)
    else:
        model = bench_model()
    model.to(args.device)
    vocab = model.config.vocab_size
    stream = torch.randint(0, vocab, (200_000,), generator=torch.Generator().manual_seed(0))
    dec = Decomposer(model, cfg, stream, args.device)
    dec.warmup_steps = 0  # time main steps only
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    if args.compare:
        return compare(dec, cfg, model, stream, args, sync)
    for _ in range(args.warmup):
        dec.train_step()
    with FlopCounterMode(display=False) as counter:
        dec.train_step()
    flop_per_step = counter.get_total_flops()
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        dec.train_step()
    sync()
    seconds = time.perf_counter() - start
    dtype = torch.bfloat16 if args.device == "cuda" and cfg.autocast_bf16 else torch.float32
    peak = matmul_peak_flops(args.device, dtype)
    steps_per_s = args.steps / seconds
    result = {
        "recipe": cfg.name,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "steps_per_s": round(steps_per_s, 3),
        "tokens_per_s": round(steps_per_s * cfg.batch_size * cfg.seq_len),
        "gflop_per_step": round(flop_per_step / 1e9, 2),
        "achieved_gflop_s": round(flop_per_step * steps_per_s / 1e9, 1),
        "matmul_peak_gflop_s": round(peak / 1e9, 1),
        "fraction_of_peak": round(flop_per_step * steps_per_s / peak, 3),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
    }
    if args.device == "cuda":
        result["peak_cuda_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
    print(json.dumps(result, indent=1))
    return result


def curve_difference(a: list[dict], b: list[dict], window: int) -> dict[str, dict[str, float]]:
    """Per loss term: each curve's mean over its last `window` steps, and the largest gap between the
    two curves' `window`-step means, relative to the larger of the two. Two float implementations of
    the same training drift apart step by step (summation order), so single steps are not compared."""
    out = {}
    for k in (k for k in a[0] if k not in ("lr", "p")):
        x, y = torch.tensor([r[k] for r in a], dtype=torch.float64), torch.tensor([r[k] for r in b], dtype=torch.float64)
        n = len(x) // window * window
        mx, my = x[:n].view(-1, window).mean(1), y[:n].view(-1, window).mean(1)
        gap = (mx - my).abs() / torch.maximum(mx.abs(), my.abs()).clamp(min=1e-30)
        out[k] = {"reference_last": float(mx[-1]), "optimised_last": float(my[-1]), "max_window_rel_gap": float(gap.max())}
    return out


def compare(fast, cfg, model, stream, args, sync) -> dict:
    """Alternate rounds of the reference and the optimised path (two decomposers of the same model) and report both."""
    import copy
    import statistics

    from decompose.train import Decomposer

    ref = Decomposer(copy.deepcopy(model), cfg, stream, args.device)
    ref.warmup_steps = 0
    ref.set_fast(False)
    clock = time.process_time if args.cpu_time else time.perf_counter
    for dec in (ref, fast):
        for _ in range(args.warmup):
            dec.train_step()
    rates: dict[str, list[float]] = {"reference": [], "optimised": []}
    curves: dict[str, list[dict]] = {"reference": [], "optimised": []}
    for _ in range(args.rounds):
        for name, dec in (("reference", ref), ("optimised", fast)):
            sync()
            start = clock()
            for _ in range(args.round_steps):
                curves[name].append(dec.train_step())
            sync()
            rates[name].append(args.round_steps / (clock() - start))
    med = {k: statistics.median(v) for k, v in rates.items()}
    best = {k: max(v) for k, v in rates.items()}
    result = {
        "recipe": cfg.name,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "clock": "process cpu time" if args.cpu_time else "wall",
        "reference_steps_per_s": {"median": round(med["reference"], 3), "best": round(best["reference"], 3)},
        "optimised_steps_per_s": {"median": round(med["optimised"], 3), "best": round(best["optimised"], 3)},
        "ratio_median": round(med["optimised"] / med["reference"], 3),
        "ratio_best": round(best["optimised"] / best["reference"], 3),
        "rounds": args.rounds,
        "round_steps": args.round_steps,
        # Both paths start from the same parameters and seeds and see the same batches and masks.
        "loss_curves": curve_difference(curves["reference"], curves["optimised"], args.round_steps),
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
