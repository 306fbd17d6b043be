"""APD, SPD and VPD side by side on toy models with known mechanisms: recovery, extra alive components,
CPU time, and sensitivity to the minimality coefficient.

    python benchmarks/toy_recovery.py                                  # the committed table
    python benchmarks/toy_recovery.py --toys tms-5-2 --methods spd vpd --seeds 0 --factors 1

For every toy model (decompose/toy, trained from each seed) and method (recipe `<toy>-<method>` under
recipes/decompose/), the minimality knob is scaled by each factor (importance-minimality coefficient for
SPD/VPD, batch top-k for APD) and the decomposition is scored against the ground truth: each
(matrix, mechanism) pair matched to its best alive component by cosine similarity of the weights, the
mean of those cosines, and alive components minus the expected ones; for SPD/VPD also the SPD paper's
causal-importance test (each feature alone at 0.75: exactly one subcomponent on per matrix, on for that
feature alone) and, for a residual MLP's mlp_out, how many subcomponents are on against d_mlp
(decompose/toy/recovery.py). Runs are appended to `--out`/runs.jsonl
and skipped when already there, so an interrupted benchmark continues; the table is written to
`--out`/toy_recovery.md and printed. Seconds are process CPU seconds (the machines are shared).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

TOYS = ["tms-5-2", "tms-40-10", "resid-mlp-20-10", "resid-mlp-100-50", "resid-mlp-2x25"]
METHODS = ["apd", "spd", "vpd"]
SWEEP_TOYS = ("tms-5-2", "tms-40-10", "resid-mlp-20-10")  # swept over seeds and factors by default; the larger toys run once
OUT = Path(__file__).parent / "results" / "toy"


def run_one(toy_name: str, method: str, seed: int, factor: float, cache: Path) -> dict:
    import torch

    from decompose.config import DecomposeConfig
    from decompose.toy.models import cached_toy
    from decompose.toy.run import decompose_toy, scale_minimality
    from editor.recipe import load_recipe

    torch.set_num_threads(1)
    start = time.process_time()
    toy = cached_toy(toy_name, seed, cache)
    train_seconds = time.process_time() - start
    cfg = load_recipe(DecomposeConfig, f"{toy_name}-{method}", "decompose", [f"seed={seed}"])
    cfg = scale_minimality(cfg, factor)
    result = decompose_toy(toy, cfg)
    imp = cfg.importance
    r = result.recovery
    figure = {}
    if toy_name == "tms-5-2":
        # For the figure: how much of each feature's column of W_in every alive component carries.
        alive = result.alive["W_in"] if isinstance(result.alive, dict) else result.alive
        pieces = result.components["W_in"][alive]
        figure = {"w_in_feature_norms": [[round(float(v), 4) for v in row] for row in pieces.norm(dim=1)]}
    return {
        "toy": toy_name,
        "method": method,
        "seed": seed,
        "factor": factor,
        "mean_cosine": round(r.mean_cosine, 4),
        "min_cosine": round(r.min_cosine, 4),
        "recovered": r.recovered,
        "pairs": r.pairs,
        "alive": r.alive,
        "mechanisms": r.mechanisms,
        "extra_alive": r.extra_alive,
        "distinct": r.distinct,
        "ci_recovered": r.ci_recovered,  # SPD/VPD: pairs with exactly one subcomponent on for the one-hot feature, on for it alone
        "dense_on": r.dense_on,  # residual MLP mlp_out: subcomponents on for some one-hot feature ...
        "dense_rank": r.dense_rank,  # ... against the d_mlp expected
        "faithfulness": result.faithfulness,
        "seconds": round(result.seconds, 1),
        "toy_seconds": round(train_seconds, 1),  # training the toy model, or loading it from the cache
        "steps": cfg.steps,
        "knob": cfg.apd.topk if method == "apd" else (imp.coeff if imp else None),  # the swept value itself
        **figure,
    }


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def key(run: dict) -> tuple:
    return (run["toy"], run["method"], run["seed"], float(run["factor"]))


def table(runs: list[dict], toys: list[str], methods: list[str], factors: list[float]) -> str:
    """Markdown: per method × toy, the recipe's coefficient (factor 1) and the spread over the sweep."""
    lines = [
        "| method | toy | mean best cosine | recovered (≥ 0.9) | CI-recovered | mlp_out on / d_mlp | alive / expected | extra alive | CPU s | cosine by factor "
        + " / ".join(f"×{f:g}" for f in factors)
        + " | sweep min–max |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for toy in toys:
        for method in methods:
            mine = [r for r in runs if r["toy"] == toy and r["method"] == method]
            base = [r for r in mine if float(r["factor"]) == 1.0]
            if not base:
                continue
            mean = statistics.mean(r["mean_cosine"] for r in base)
            rec = statistics.mean(r["recovered"] / r["pairs"] for r in base)
            with_ci = [r for r in base if r.get("ci_recovered") is not None]
            ci = f"{100 * statistics.mean(r['ci_recovered'] / r['pairs'] for r in with_ci):.0f}%" if with_ci else "–"
            dense = "; ".join(f"{r['dense_on']}/{r['dense_rank']}" for r in base if r.get("dense_rank")) or "–"
            alive = "; ".join(f"{r['alive']}/{r['mechanisms']}" for r in base)
            extra = statistics.mean(r["extra_alive"] for r in base)
            secs = statistics.mean(r["seconds"] for r in base)
            by_factor = []
            for f in factors:
                rs = [r["mean_cosine"] for r in mine if float(r["factor"]) == f]
                by_factor.append(f"{statistics.mean(rs):.3f}" if rs else "–")
            allc = [r["mean_cosine"] for r in mine]
            lines.append(
                f"| {method} | {toy} | {mean:.3f} | {100 * rec:.0f}% | {ci} | {dense} | {alive} | {extra:+.1f} | {secs:.0f} | {' / '.join(by_factor)} | {min(allc):.3f}–{max(allc):.3f} |"
            )
    return "\n".join(lines)


def figure(runs: list[dict], path: Path, methods: list[str]) -> None:
    """TMS 5→2, seed 0, the recipe's coefficients: which features each alive component's W_in piece carries."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picked = {r["method"]: r for r in runs if r["toy"] == "tms-5-2" and r["seed"] == 0 and float(r["factor"]) == 1.0 and "w_in_feature_norms" in r}
    methods = [m for m in methods if m in picked]
    if not methods:
        return
    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3.2), squeeze=False)
    for ax, m in zip(axes[0], methods):
        norms = picked[m]["w_in_feature_norms"]
        ax.imshow(norms, cmap="Blues", vmin=0, aspect="auto")
        ax.set_title(f"{m.upper()}: cosine {picked[m]['mean_cosine']:.3f}")
        ax.set_xlabel("feature (column of W_in)")
        ax.set_ylabel("alive component")
        ax.set_xticks(range(5))
        ax.set_yticks(range(len(norms)))
    fig.suptitle(
        "TMS 5→2: the norm of each feature's column in each component's W_in piece\n(one dark cell per row and column = one component per feature)", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--toys", nargs="+", default=TOYS, choices=TOYS)
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--factors", nargs="+", type=float, default=[0.3, 1.0, 3.0], help="Multipliers of the minimality knob.")
    ap.add_argument(
        "--sweep-toys",
        nargs="+",
        default=list(SWEEP_TOYS),
        choices=TOYS,
        help="Toys that get the whole sweep (others: factor 1, first seed). Default: the fast ones, so the default grid fits 20 minutes of 2 cores.",
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--table-only", action="store_true", help="Write the table and figure from runs.jsonl without running anything.")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--cache", type=Path, default=Path("runs/toy-models"), help="Trained toy models, reused across runs.")
    args = ap.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    runs_path = args.out / "runs.jsonl"
    runs = [json.loads(line) for line in runs_path.read_text().splitlines() if line] if runs_path.exists() else []
    done = {key(r) for r in runs}
    sweep = set(args.sweep_toys)
    todo = []
    for toy in args.toys:
        seeds = args.seeds if toy in sweep else args.seeds[:1]
        factors = args.factors if toy in sweep else [1.0]
        for seed in seeds:
            for factor in factors:
                for method in args.methods:
                    if (toy, method, seed, factor) not in done:
                        todo.append((toy, method, seed, factor))
    # The recipe's own coefficient on the first seed first, for every toy; then the sweep.
    todo.sort(key=lambda job: (job[3] != 1.0 or job[2] != args.seeds[0], job[2], job[3]))
    if args.table_only:
        todo = []
    print(f"{len(todo)} runs to do, {len(done)} already in {runs_path}", file=sys.stderr)
    # One torch thread per worker: on a busy machine, idle OpenMP threads spin and burn the CPU share.
    with ProcessPoolExecutor(max_workers=args.workers, initializer=_one_thread) as pool:
        # Each toy model is trained once per seed (in parallel), then read from the cache by every run.
        from decompose.toy.models import cached_toy

        if todo:
            list(pool.map(cached_toy, *zip(*sorted({(t, s, args.cache) for t, _, s, _ in todo}))))
        futures = [pool.submit(run_one, *job, args.cache) for job in todo]
        for fut in as_completed(futures):
            run = fut.result()
            runs.append(run)
            with runs_path.open("a") as f:
                f.write(json.dumps(run) + "\n")
            print(json.dumps(run), file=sys.stderr, flush=True)
    latest = {key(r): r for r in runs}  # a rerun (e.g. after a recipe change) replaces the earlier row
    wanted = [r for r in latest.values() if r["toy"] in args.toys and r["method"] in args.methods]
    md = table(wanted, args.toys, args.methods, args.factors)
    (args.out / "toy_recovery.md").write_text(
        "# APD, SPD and VPD on toy models\n\n`python benchmarks/toy_recovery.py` (runs in runs.jsonl)\n\n" + md + "\n", encoding="utf-8"
    )
    figure(wanted, args.out / "tms-5-2-components.png", args.methods)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
