"""A/B of two training defaults on tiny-toxic: the component grad clip (0.01 / off) × the lr schedule (cosine → 0.1 / constant).

    python benchmarks/defaults_ab.py                      # 4 runs × 1,000 steps, one thread each, one after another
    python benchmarks/defaults_ab.py --steps 200 --out runs/ab-quick
    python benchmarks/defaults_ab.py --table-only         # print the table of the runs that finished

Every run uses the same recipe, seed, batches and masks and differs only in the two settings. Runs
that finished are skipped and an interrupted one resumes, so the script can be stopped and restarted.
Prints a markdown table (final CI-masked KL, PGD KL, L0, alive components, seconds) and writes it
as JSON beside the runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

VARIANTS = {
    "clip-cosine": {"grad_clip_components": 0.01, "lr_final_frac": 0.1},
    "clip-constant": {"grad_clip_components": 0.01, "lr_final_frac": 1.0},
    "noclip-cosine": {"grad_clip_components": None, "lr_final_frac": 0.1},
    "noclip-constant": {"grad_clip_components": None, "lr_final_frac": 1.0},
}


def _yaml(value) -> str:
    return "null" if value is None else str(value)


def run_variant(name: str, settings: dict, args: argparse.Namespace) -> Path:
    out = args.out / name
    if out.is_dir():
        return out
    sets = [f"{k}={_yaml(v)}" for k, v in settings.items()] + [f"threads={args.threads}", "keep_checkpoints=false"]
    cmd = [sys.executable, "-m", "editor.cli", "decompose", "--recipe", args.recipe, "--steps", str(args.steps), "--out", str(out)]
    cmd += [a for s in sets for a in ("--set", s)]
    if out.with_name(out.name + ".partial").is_dir():
        cmd.append("--resume")
    print("running:", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True)
    return out


def row(name: str, out: Path) -> dict:
    manifest = json.loads((out / "decomposition.json").read_text(encoding="utf-8"))
    m = manifest["metrics"]
    return {
        "variant": name,
        **VARIANTS[name],
        "kl_ci_masked": m["kl/ci_masked"],
        "kl_stochastic": m["kl/stochastic"],
        "kl_pgd": m["kl/pgd"],
        "l0_total": m["l0/total"],
        "alive": m["alive/total"],
        "seconds": manifest["seconds_this_process"],
    }


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="tiny-toxic")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("runs/defaults-ab"))
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args(argv)
    rows = []
    for name, settings in VARIANTS.items():
        out = args.out / name
        if not args.table_only:
            run_variant(name, settings, args)
        if (out / "decomposition.json").is_file():
            rows.append(row(name, out))
    print("| variant | clip | lr end | CI-masked KL | stochastic KL | PGD KL | L0 total | alive | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        clip = "off" if r["grad_clip_components"] is None else r["grad_clip_components"]
        print(
            f"| {r['variant']} | {clip} | {r['lr_final_frac']} | {r['kl_ci_masked']:.4f} | {r['kl_stochastic']:.4f} "
            f"| {r['kl_pgd']:.3f} | {r['l0_total']:.1f} | {r['alive']} | {r['seconds']:.0f} |"
        )
    if rows:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "table.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
