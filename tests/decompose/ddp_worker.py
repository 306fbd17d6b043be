"""One rank of the data-parallel test, launched by test_distributed.py under torchrun (gloo, CPU).

Usage: python -m torch.distributed.run --standalone --nproc_per_node 2 tests/decompose/ddp_worker.py OUT

Writes under OUT:
- rank{r}.safetensors: this rank's final U, V and CI-fn parameters after a Decomposer loop, and a
  shared fresh-PGD source ascended on this rank's own batch ("pgd_source.<matrix>");
- rank{r}.json: this rank's metrics of every step of that loop;
- init.safetensors (rank 0): the parameters before training;
- run/: run_decomposition of the same config, interrupted after step 7 and resumed (rank 0 writes it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for `tests.fixtures`

from safetensors.torch import save_file  # noqa: E402

from decompose.config import DecomposeConfig  # noqa: E402
from decompose.distributed import barrier, init_distributed  # noqa: E402
from decompose.losses.pgd_recon import PgdReconConfig, pgd_sources  # noqa: E402
from decompose.losses.recon import ReconContext, routing  # noqa: E402
from decompose.run import run_decomposition  # noqa: E402
from decompose.train import Decomposer  # noqa: E402
from tests.fixtures import VOCAB, tiny_model  # noqa: E402

INTERRUPT_AT = 7  # after the checkpoint of step 6, before that of step 8


def config() -> DecomposeConfig:
    return DecomposeConfig.model_validate(
        dict(
            targets={"*.mlp.*_proj": 8, "*.self_attn.q_proj": 4},
            ci_fn={"kind": "shared_mlp", "hidden": 8},
            steps=6,
            batch_size=2,
            seq_len=8,
            checkpoint_every=3,
            eval={"every": 3, "batches": 1, "pgd_steps": 2},
            losses=[
                {"kind": "faithfulness", "coeff": 1e3, "warmup_steps": 2},
                {"kind": "importance_minimality", "coeff": 1e-3, "beta": 0.5},
                {"kind": "stochastic_recon", "coeff": 0.5},
                {"kind": "pgd_recon", "coeff": 0.5, "shared": True},
                {"kind": "persistent_pgd_recon", "coeff": 0.5},
            ],
        )
    )


def params(dec: Decomposer) -> dict[str, torch.Tensor]:
    named = {f"components.{k}": v for k, v in dec.cm.components.named_parameters()}
    named |= {f"ci_fn.{k}": v for k, v in dec.ci_fn.named_parameters()}
    return {k: v.detach().clone().contiguous() for k, v in named.items()}


def shared_pgd_source(dec: Decomposer) -> dict[str, torch.Tensor]:
    ids = dec.next_batch()
    logits, inputs = dec.target_pass(ids)
    g, _ = dec.ci(inputs)
    ctx = ReconContext(dec.cm, ids, g, dec.output_target(logits), dec.mask_gen, 0, 1)
    pgd = PgdReconConfig(n_steps=3, step_size=0.1, shared=True, subset=False)
    return {f"pgd_source.{n}": s.contiguous() for n, s in pgd_sources(ctx, pgd, routing(ctx, False)).items()}


class Interrupt(Exception):
    pass


def main(out: Path) -> None:
    torch.set_num_threads(1)
    dist = init_distributed("cpu")
    assert dist.world_size == 2, dist
    model = tiny_model("llama")
    stream = torch.randint(0, VOCAB, (2000,), generator=torch.Generator().manual_seed(0))  # the same on every rank
    cfg = config()

    dec = Decomposer(model, cfg, stream, "cpu", dist)
    if dist.is_main:
        save_file(params(dec), str(out / "init.safetensors"))
    steps = []
    while not dec.done:
        steps.append(dec.train_step())
    save_file(params(dec) | shared_pgd_source(dec), str(out / f"rank{dist.rank}.safetensors"))
    (out / f"rank{dist.rank}.json").write_text(json.dumps(steps), encoding="utf-8")

    def interrupt(step: int, total: int, metrics: dict) -> None:
        if step == INTERRUPT_AT:
            raise Interrupt

    try:
        run_decomposition(model, stream, cfg, out / "run", dist=dist, on_step=interrupt)
    except Interrupt:
        pass
    result = run_decomposition(model, stream, cfg, out / "run", resume=True, dist=dist)
    assert result.is_dir()  # rank 0 has renamed it before any rank returns
    barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
