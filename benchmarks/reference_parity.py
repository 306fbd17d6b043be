"""Reference parity: `decompose/` and goodfire-ai/spd trained side by side from the same init on the same batches.

    python benchmarks/reference_parity.py --reference /path/to/spd                 # bench recipe, 200 steps
    SPD_REFERENCE=/path/to/spd python benchmarks/reference_parity.py --steps 800 --window 50
    python benchmarks/reference_parity.py --reference /path/to/spd --toy --steps 6  # seconds (the test)

Without a reference checkout it prints how to get one and exits 0 ("skipped").

Both sides get the same target model (the speed benchmark's random 2-layer Llama d128, or a toy one), the
same initial U, V and CI-function weights (ours, copied into the reference's ComponentModel) and the same
batches; the reference trains with its own `spd.run_spd.optimize` (benchmarks/reference_side.py, run in a
subprocess with `--reference-python`, default this interpreter). The recipe is translated setting by
setting into a reference Config; kinds the reference lacks are refused.

What is compared: the stochastic masks and the PGD sources are random draws, which the two programs take
from different generators in a different order, so only step 0's deterministic terms (faithfulness,
importance minimality, L0: same weights, same batch) can agree to float round-off. From then on the two
trajectories see different draws and are compared by means over windows of `--window` steps: per loss
term, both curves' last-window mean and the largest relative gap between their window means.

The reference's Python dependencies (jaxtyping, einops, wandb, wandb-workspaces, fire, python-dotenv) are
not this project's: put them in a separate environment that also sees torch and transformers (README,
"Reference parity"). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HOW_TO_GET = """skipped: no reference checkout (give --reference PATH or set SPD_REFERENCE).
To get one:   git clone https://github.com/goodfire-ai/spd /work/ref-spd
Its imports need (outside this project's environment):
  python -m venv /work/ref-venv && echo "$(python -c 'import site; print(site.getsitepackages()[0])')" \\
      > "$(/work/ref-venv/bin/python -c 'import site; print(site.getsitepackages()[0])')/main.pth"
  /work/ref-venv/bin/pip install jaxtyping==0.3.4 einops==0.8.1 wandb==0.23.1 wandb-workspaces==0.1.12 fire python-dotenv
Then:         python benchmarks/reference_parity.py --reference /work/ref-spd --reference-python /work/ref-venv/bin/python"""

# Our loss kind → the reference's logged name (train/loss/<classname>).
DETERMINISTIC = ("faithfulness", "importance_minimality", "l0")


def llama(vocab: int, d: int, mlp: int, layers: int, heads: int, ctx: int):
    """A random Llama (the speed benchmark's model at 2048 / 128 / 512 / 2 / 4 / 128)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=d,
        intermediate_size=mlp,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=ctx,
    )
    return LlamaForCausalLM(config).eval()


def reference_losses(cfg) -> tuple[list[dict], dict[str, str]]:
    """Our loss list → the reference's loss_metric_configs, and our term name → its logged name."""
    from decompose.losses import FaithfulnessConfig, ImportanceMinimalityConfig, PgdReconConfig, StochasticReconConfig

    out: list[dict] = []
    names: dict[str, str] = {}
    routing = {"routing": {"type": "uniform_k_subset"}}
    for loss in cfg.losses:
        if isinstance(loss, FaithfulnessConfig):
            entry: dict = {"classname": "FaithfulnessLoss", "coeff": loss.coeff}
        elif isinstance(loss, ImportanceMinimalityConfig):
            entry = {
                "classname": "ImportanceMinimalityLoss",
                "coeff": loss.coeff,
                "pnorm": loss.p_start,
                "beta": loss.beta,
                "p_anneal_start_frac": loss.p_anneal_start_frac,
                "p_anneal_final_p": loss.p_final,
                "p_anneal_end_frac": loss.p_anneal_end_frac,
                "eps": loss.eps,
            }
        elif isinstance(loss, StochasticReconConfig):
            entry = {"classname": "StochasticReconSubsetLoss", **routing} if loss.subset else {"classname": "StochasticReconLoss"}
            entry["coeff"] = loss.coeff
        elif isinstance(loss, PgdReconConfig):
            entry = {"classname": "PGDReconSubsetLoss", **routing} if loss.subset else {"classname": "PGDReconLoss"}
            scope = "shared_across_batch" if loss.shared else "unique_per_datapoint"
            entry |= {"coeff": loss.coeff, "init": loss.init, "step_size": loss.step_size, "n_steps": loss.n_steps, "mask_scope": scope}
        else:
            raise SystemExit(f"{loss.kind}: no counterpart in the reference's loss configs that this benchmark maps")
        out.append(entry)
        names[loss.kind] = "loss/" + entry["classname"]
    return out, names


def reference_config(cfg, targets: dict[str, int], model_dir: Path) -> tuple[dict, dict[str, str]]:
    """The reference Config (as a dict) that trains what `cfg` trains, setting by setting."""
    if cfg.ci_fn.kind != "shared_mlp":
        raise SystemExit("only the shared-MLP CI function is mapped (the reference's ci_fn_type shared_mlp)")
    losses, names = reference_losses(cfg)
    constant = cfg.lr_final_frac == 1.0
    warmup_steps, warmup_lr = cfg.warmup
    config = {
        "wandb_project": None,
        "seed": cfg.seed,
        "n_mask_samples": 1,
        "ci_fn_type": "shared_mlp",
        "ci_fn_hidden_dims": [cfg.ci_fn.hidden],
        "sampling": "continuous",
        "sigmoid_type": "leaky_hard",
        "module_info": [{"module_pattern": name, "C": c} for name, c in targets.items()],
        "use_delta_component": True,
        "loss_metric_configs": losses,
        "output_loss_type": cfg.output_loss,
        "lr_schedule": {
            "start_val": cfg.lr,
            "fn_type": "constant" if constant else "cosine",
            "warmup_pct": cfg.lr_warmup_frac,
            "final_val_frac": cfg.lr_final_frac,
        },
        "steps": cfg.steps,
        "batch_size": cfg.batch_size,
        "grad_clip_norm_components": cfg.grad_clip_components,
        "grad_clip_norm_ci_fns": None,
        "faithfulness_warmup_steps": warmup_steps,
        "faithfulness_warmup_lr": warmup_lr,
        "faithfulness_warmup_weight_decay": 0.0,
        "autocast_bf16": False,  # float32 on both sides (the reference autocasts to bf16 on CPU too when on)
        "train_log_freq": 1,
        "eval_freq": cfg.steps,
        "slow_eval_freq": cfg.steps,
        "slow_eval_on_first_step": False,
        "n_eval_steps": 1,
        "eval_batch_size": cfg.batch_size,
        "save_freq": None,
        "eval_metric_configs": [],
        "ci_alive_threshold": 0.0,
        "pretrained_model_class": "transformers.LlamaForCausalLM",
        "pretrained_model_path": str(model_dir),
        "pretrained_model_output_attr": "logits",
        "task_config": {"task_name": "lm", "max_seq_len": cfg.seq_len, "dataset_name": "unused", "column_name": "text"},
    }
    if cfg.weight_decay != 0.0:
        raise SystemExit("the reference's AdamW has weight decay 0")
    return config, names


def initial_weights(dec) -> dict:
    """Our initial U, V and CI-function weights in the reference's layouts (its Linear keeps W as d_in × d_out)."""
    from decompose.targets import module_key

    comps = {n: {"V": dec.cm.comp(n).V.detach().clone(), "U": dec.cm.comp(n).U.detach().clone()} for n in dec.cm.names}
    ci = {}
    for n in dec.cm.names:
        mlp = dec.ci_fn.mlps[module_key(n)]
        ci[n] = [(m.weight.detach().T.contiguous(), m.bias.detach().clone()) for m in mlp if isinstance(m, torch.nn.Linear)]
    return {"components": comps, "ci_fns": ci}


def window_gaps(ours: list[float], ref: list[float], window: int) -> dict[str, float]:
    x, y = torch.tensor(ours, dtype=torch.float64), torch.tensor(ref, dtype=torch.float64)
    n = min(len(x), len(y)) // window * window
    if n == 0:
        raise SystemExit(f"--window {window} is longer than the run")
    mx, my = x[:n].view(-1, window).mean(1), y[:n].view(-1, window).mean(1)
    gap = (mx - my).abs() / torch.maximum(mx.abs(), my.abs()).clamp(min=1e-30)
    return {"ours_last": float(mx[-1]), "reference_last": float(my[-1]), "max_window_rel_gap": float(gap.max()), "last_window_rel_gap": float(gap[-1])}


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-30)


def main(argv: list[str] | None = None) -> dict:
    from decompose.config import DecomposeConfig
    from decompose.data import random_windows
    from decompose.train import Decomposer
    from editor.recipe import load_recipe

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, default=os.environ.get("SPD_REFERENCE") or None, help="Checkout of goodfire-ai/spd (env SPD_REFERENCE).")
    ap.add_argument(
        "--reference-python",
        default=os.environ.get("SPD_REFERENCE_PYTHON") or sys.executable,
        help="Interpreter with the reference's dependencies (env SPD_REFERENCE_PYTHON).",
    )
    ap.add_argument("--recipe", default="bench-llama2-d128")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--window", type=int, default=10, help="Steps per window for the stochastic comparison.")
    ap.add_argument("--threads", type=int, default=None, help="torch threads on both sides (default: the recipe's).")
    ap.add_argument("--toy", action="store_true", help="A 1-layer d32 Llama, C 8, batch 2 × 16: seconds, for the test.")
    ap.add_argument("--per-step", action="store_true", help="Also print every step's losses of both sides.")
    args = ap.parse_args(argv)
    if args.reference is None:
        print(HOW_TO_GET)
        return {"skipped": True}

    sizes = ["steps=" + str(args.steps)]
    if args.toy:
        sizes += ["default_C=8", "ci_fn.hidden=8", "batch_size=2", "seq_len=16"]
    cfg = load_recipe(DecomposeConfig, args.recipe, "decompose", [*sizes, *args.overrides])
    threads = args.threads or cfg.threads or 1
    torch.set_num_threads(threads)
    model = llama(128, 32, 64, 1, 2, 16) if args.toy else llama(2048, 128, 512, 2, 4, 128)
    stream = torch.randint(0, model.config.vocab_size, (200_000,), generator=torch.Generator().manual_seed(0))
    batches = torch.stack([random_windows(stream, cfg.batch_size, cfg.seq_len, torch.Generator().manual_seed(cfg.seed + s)) for s in range(cfg.steps + 1)])
    dec = Decomposer(model, cfg, stream, "cpu")
    queue = iter(batches)
    dec.batches = lambda gen: next(queue)
    targets = {n: dec.cm.C(n) for n in dec.cm.names}

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model.save_pretrained(work / "model")
        torch.save(initial_weights(dec), work / "init.pt")
        torch.save(batches, work / "batches.pt")
        ref_cfg, names = reference_config(cfg, targets, work / "model")
        job = {
            "reference": str(args.reference.resolve()),
            "model_dir": str(work / "model"),
            "init": str(work / "init.pt"),
            "batches": str(work / "batches.pt"),
            "config": ref_cfg,
            "threads": threads,
            "out": str(work / "reference.json"),
        }
        (work / "job.json").write_text(json.dumps(job), encoding="utf-8")
        side = Path(__file__).with_name("reference_side.py")
        start = time.perf_counter()
        subprocess.run([args.reference_python, str(side), str(work / "job.json")], check=True, stdout=sys.stderr)
        ref_seconds = time.perf_counter() - start
        ref = json.loads((work / "reference.json").read_text(encoding="utf-8"))

    ours: list[dict] = []
    wall, cpu = [], []
    for _ in range(dec.total_steps):
        wall.append(time.perf_counter())
        cpu.append(time.process_time())
        m = dec.train_step()
        if "lr" in m:
            ours.append(m)
    wall.append(time.perf_counter())
    cpu.append(time.process_time())

    def ref_term(step: dict, kind: str) -> float:
        if kind == "l0":
            layers = [v for k, v in step.items() if k.startswith("l0/")]
            return sum(layers) / len(layers)
        return step[names[kind]]

    kinds = [*names, "l0"]
    curves = {k: ([s[k] for s in ours], [ref_term(s, k) for s in ref["steps"]]) for k in kinds}
    step0 = {k: {"ours": curves[k][0][0], "reference": curves[k][1][0], "rel_diff": rel(curves[k][0][0], curves[k][1][0])} for k in kinds if k in DETERMINISTIC}
    windows = {k: window_gaps(*curves[k], args.window) for k in kinds}
    skip = min(5, max(0, cfg.steps - 2))  # first steps carry one-off costs on both sides

    def rate(stamps: list[float]) -> float:
        return (len(stamps) - 1 - skip) / (stamps[-1] - stamps[skip])

    ref_wall, ref_cpu = ref["step_start_wall"], ref["step_start_cpu"]  # steps + 1 stamps: the last opens the logging-only step
    result = {
        "recipe": cfg.name,
        "toy": args.toy,
        "steps": cfg.steps,
        "window": args.window,
        "threads": threads,
        "reference_python": ref["python"],
        "reference_torch": ref["torch"],
        "random_draws_shared": False,
        "step0_deterministic": step0,
        "window_means": windows,
        "largest_rel_diff": {
            "step0_deterministic": max(v["rel_diff"] for v in step0.values()),
            "window_means": max(v["max_window_rel_gap"] for v in windows.values()),
        },
        # Training rates of the two sides over the same steps (the reference logs every step here, which costs it a little).
        "steps_per_s_wall": {"ours": round(rate(wall[-cfg.steps - 1 :]), 3), "reference": round(rate(ref_wall), 3)},
        "steps_per_s_cpu": {"ours": round(rate(cpu[-cfg.steps - 1 :]), 3), "reference": round(rate(ref_cpu), 3)},
        "reference_process_seconds": round(ref_seconds, 1),
    }
    if args.per_step:
        result["per_step"] = {k: {"ours": v[0], "reference": v[1][: cfg.steps]} for k, v in curves.items()}
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
