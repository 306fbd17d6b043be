"""`editor decompose`: train a VPD decomposition of a causal LM on text."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from editor.cli.common import SetOpt, TextFieldOpt, user_errors
from editor.console import console, progress

DEFAULT_RECIPE = "tiny-toxic"


def _status(m: dict[str, float]) -> str:
    keys = [("total", "loss"), ("stochastic_recon", "stoch"), ("pgd_recon", "pgd"), ("persistent_pgd_recon", "ppgd"), ("faithfulness", "faith")]
    parts = [f"{short} {m[k]:.4g}" for k, short in keys if k in m]
    if "l0" in m:
        parts.append(f"L0 {m['l0']:.1f}")
    return " | ".join(parts)


@user_errors
def decompose(
    model: Annotated[
        str | None,
        typer.Option(help="Model name, local directory or hub id (default: tiny-toxic); toy:NAME trains a toy model (decompose/toy) from the recipe's seed."),
    ] = None,
    data: Annotated[
        list[str] | None,
        typer.Option(
            metavar="DATA",
            help="Training text: JSONL, text, Parquet or CSV file, save_to_disk folder or dataset id (repeatable). Default: the shipped model's training text (WikiText + tweets; tiny-facts: WikiText + biographies).",
        ),
    ] = None,
    recipe: Annotated[str, typer.Option(help="Recipe name under recipes/decompose/ or a YAML path.")] = DEFAULT_RECIPE,
    out: Annotated[Path | None, typer.Option(help="Output directory (default: runs/<recipe name>).")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Override the recipe's main training steps.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its last checkpoint.")] = False,
    device: Annotated[str, typer.Option(help="cpu, cuda, or cuda:N.")] = "cpu",
    log: Annotated[
        str | None,
        typer.Option(
            metavar="LOGGER",
            help="Also log every loss and eval metric to: tensorboard (OUT/tensorboard/; needs the tensorboard package). metrics.jsonl and metrics.png are written either way.",
        ),
    ] = None,
    text_field: TextFieldOpt = "text",
    overrides: SetOpt = None,
) -> None:
    """Decompose every attention and MLP matrix into rank-1 components with a learned causal-importance function.

    Writes OUT atomically (OUT.partial while training, renamed when complete); prints OUT. The curves are in
    metrics.jsonl and metrics.png (redrawn at every evaluation), and with --log tensorboard in OUT/tensorboard/.

    Examples:

    \b
      editor decompose --steps 200 --out runs/quick --set batch_size=4
      editor decompose --log tensorboard --out runs/dec    # tensorboard --logdir runs/dec.partial/tensorboard
      editor decompose --model toy:tms-5-2 --recipe tms-5-2-apd --out runs/tms-apd
    """
    from decompose.layout import partial_dir
    from decompose.logs import check_log
    from editor.cli.common import check_device
    from editor.errors import EditorError
    from editor.model_io import default_data, resolve_model
    from editor.recipe import read_recipe
    from lmkit.files import check_writable_parent
    from lmkit.texts import load_many

    # Everything the user typed is checked before torch loads (seconds): recipe file, output, data, model.
    extra = [f"steps={steps}"] if steps is not None else []
    _, raw = read_recipe(recipe, "decompose", (overrides or []) + extra)
    dest = out or Path("runs") / str(raw.get("name") or "decomposition")
    if dest.exists() or dest.is_symlink():
        raise EditorError(f"--out {dest} already exists; choose another --out or remove it")
    if partial_dir(dest).exists() and not resume:
        raise EditorError(f"{partial_dir(dest)} holds an interrupted run: pass --resume to continue it, or remove it")
    check_writable_parent(dest)
    if model is not None and model.startswith("toy:"):
        _decompose_toy(model.removeprefix("toy:"), recipe, (overrides or []) + extra, dest)
        return
    texts = load_many(data or [str(p) for p in default_data(model).train], text_field)
    source = resolve_model(model)
    check_device(device)
    check_log(log)

    from decompose.config import DecomposeConfig
    from decompose.distributed import init_distributed
    from editor import api
    from editor.recipe import load_recipe

    cfg = load_recipe(DecomposeConfig, recipe, "decompose", (overrides or []) + extra)
    lm, tok = api.load_model(model)
    dist = init_distributed(device.split(":")[0])
    with progress() as bar:
        task = bar.add_task(f"decomposing ({cfg.name})", total=None, status="", visible=dist.is_main)

        def on_step(step: int, total: int, metrics: dict[str, float]) -> None:
            bar.update(task, completed=step, total=total, status=_status(metrics))

        def on_eval(metrics: dict) -> None:
            if dist.is_main:
                console.print(
                    f"eval: CE target {metrics.get('ce/target', float('nan')):.3f} | CI-masked {metrics.get('ce/ci_masked', float('nan')):.3f}"
                    f" | PGD KL {metrics.get('kl/pgd', float('nan')):.4f} | L0/matrix {metrics['l0/mean_per_matrix']:.2f}"
                    f" | alive {metrics['alive/total']}",
                    highlight=False,
                )

        try:
            result = api.decompose(
                lm, tok, texts, out=dest, recipe=cfg, resume=resume, device=device, log=log, source=source, dist=dist, on_step=on_step, on_eval=on_eval
            )
        except (KeyboardInterrupt, SystemExit):  # Ctrl-C, or SIGTERM (editor.cli)
            if dist.is_main and partial_dir(dest).is_dir():
                console.print(f"stopped: {partial_dir(dest)} keeps the last checkpoint; rerun with --resume to continue from it", highlight=False, markup=False)
            raise
    if dist.is_main:
        typer.echo(str(result))


def _decompose_toy(name: str, recipe: str, overrides: list[str], dest: Path) -> None:
    """A toy model with known mechanisms (decompose/toy), trained from the recipe's seed, decomposed by its sparse features."""
    from decompose.config import DecomposeConfig
    from decompose.run import run_decomposition
    from decompose.toy.models import SPECS, train_toy
    from editor.errors import EditorError
    from editor.recipe import load_recipe

    if name not in SPECS:
        raise EditorError(f"unknown toy model {name!r}; toy models: {', '.join(SPECS)}")
    cfg = load_recipe(DecomposeConfig, recipe, "decompose", overrides)
    if cfg.output_loss != "mse":
        raise EditorError(f"toy models have vector outputs: recipe {cfg.name} needs output_loss: mse")
    with progress() as bar:
        task = bar.add_task(f"training toy model {name}", total=None, status="")
        toy = train_toy(name, cfg.seed)
        bar.update(task, description=f"decomposing ({cfg.name})")

        def on_step(step: int, total: int, metrics: dict[str, float]) -> None:
            bar.update(task, completed=step, total=total, status=_status(metrics))

        result = run_decomposition(
            toy.model, toy.batches(cfg.batch_size), cfg, dest, model_source=f"toy:{name}", data_description={"toy": name, "seed": cfg.seed}, on_step=on_step
        )
    typer.echo(str(result))
