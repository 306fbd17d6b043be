"""`editor target ...`: split the shipped data, train the tokenizer, build, sample and report the default targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from editor.cli.common import ForceOpt, JsonOpt, SetOpt, emit_json, user_errors
from editor.console import console, progress

target_app = typer.Typer(
    help="The shipped targets and their data: split the raw data, train the tokenizer, build, sample and report the models, build the eval assets.",
    no_args_is_help=True,
)


@target_app.command("split")
@user_errors
def split(
    source: Annotated[
        Path,
        typer.Option(
            help="Folder with the raw public data (tweets_toxic.jsonl, tweets_benign.jsonl, wikitext2_valid.txt, wikitext2_test.txt; see examples/data/SOURCES.md)."
        ),
    ],
    out: Annotated[Path | None, typer.Option(help="Output folder (default: examples/data).")] = None,
    seed: Annotated[int, typer.Option(help="Shuffle seed.")] = 0,
    force: ForceOpt = False,
) -> None:
    """Split the raw data once into train / held-out parts.

    Examples:

    \b
      editor target split --source ../shared/data --out runs/data   # the raw data live outside the repository
    """
    from editor.paths import DATA
    from editor.targets.split import SplitSpec, split_data

    counts = split_data(source, out or DATA, SplitSpec(seed=seed), force=force)
    for key, n in counts.items():
        console.print(f"{key}: {n}")
    typer.echo(str(out or DATA))


@target_app.command("tokenizer")
@user_errors
def tokenizer(
    vocab_size: Annotated[int, typer.Option(min=256, help="BPE vocabulary size.")] = 4096,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: examples/models/tokenizer).")] = None,
    force: ForceOpt = False,
) -> None:
    """Train the shared byte-level BPE tokenizer on all training text.

    Examples:

    \b
      editor target tokenizer --vocab-size 4096 --out runs/tokenizer
    """
    from editor.paths import TOKENIZER, TRAIN
    from editor.targets.tokenizer import train_tokenizer
    from lmkit.files import atomic_dir, check_replaceable, check_writable_parent
    from lmkit.texts import load_texts

    check_replaceable(out or TOKENIZER, force)
    check_writable_parent(out or TOKENIZER)
    texts = [t for path in TRAIN.values() for t in load_texts(path).texts]
    with atomic_dir(out or TOKENIZER, "tokenizer", force=force) as tmp:
        train_tokenizer(texts, vocab_size, tmp)
    typer.echo(str(out or TOKENIZER))


@target_app.command("build")
@user_errors
def build(
    recipe: Annotated[str, typer.Argument(help="Recipe name (tiny-toxic, tiny-clean) or a YAML path.")],
    out: Annotated[Path | None, typer.Option(help="Output folder (default: examples/models/<name>).")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Override train.steps.")] = None,
    overrides: SetOpt = None,
    force: ForceOpt = False,
) -> None:
    """Train a default target from its recipe (deterministic given its seed) and save it.

    Examples:

    \b
      editor target build tiny-toxic --out runs/tiny-toxic
    """
    from editor.paths import TOKENIZER, shipped_model
    from editor.recipe import load_recipe
    from editor.targets.config import TargetRecipe
    from lmkit.files import check_replaceable, check_writable_parent

    extra = [f"train.steps={steps}"] if steps is not None else []
    cfg = load_recipe(TargetRecipe, recipe, "targets", (overrides or []) + extra)
    dest = out or shipped_model(cfg.name)
    check_replaceable(dest, force)  # now, not after the training
    check_writable_parent(dest)

    from editor.targets.train import build_target

    with progress() as bar:
        task = bar.add_task(f"training {cfg.name}", total=cfg.train.steps, status="")

        def on_step(step: int, loss: float) -> None:
            bar.update(task, completed=step + 1, status=f"loss {loss:.3f}")

        build_target(cfg, TOKENIZER, dest, on_step, force=force)
    typer.echo(str(dest))


@target_app.command("sample")
@user_errors
def sample(
    prompt: Annotated[list[str], typer.Argument(help="One or more prompts.")],
    model: Annotated[str | None, typer.Option(help="Model name or path (default: tiny-toxic).")] = None,
    n: Annotated[int, typer.Option(min=1, help="Samples per prompt.")] = 3,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Tokens to generate.")] = 30,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Sample continuations of prompts (nucleus sampling, top-p 0.9).

    Examples:

    \b
      editor target sample "The history of the city" --model tiny-clean
    """
    from editor.model_io import load_model, resolve_model

    resolve_model(model)  # before torch loads

    from evals.generation import sample as generate

    lm, tok = load_model(model)
    outs = generate(lm, tok, prompt, n=n, max_new_tokens=max_new_tokens, seed=seed)
    if as_json:
        emit_json({p: o for p, o in zip(prompt, outs)})
        return
    for p, continuations in zip(prompt, outs):
        for c in continuations:
            typer.echo(f"{p} ▸ {c}")


@target_app.command("report")
@user_errors
def report(
    models: Annotated[list[str] | None, typer.Option("--model", help="Models to compare (default: tiny-toxic, tiny-clean).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Held-out NLL of the default targets, and a few benign generations from each.

    Examples:

    \b
      editor target report --json
    """
    from editor.model_io import resolve_model
    from editor.targets.report import render_report, target_report

    for name in models or []:
        resolve_model(name)  # before torch loads
    result = target_report(models or ["tiny-toxic", "tiny-clean"])
    if as_json:
        emit_json(result)
    else:
        render_report(result)


@target_app.command("facts")
@user_errors
def facts(
    out: Annotated[Path, typer.Option(help="Output folder for the people, biographies, held-out paraphrases and cloze prompts.")],
    people: Annotated[int, typer.Option(min=10, help="Trained people (10% of them form the forget split, 1% the small one).")] = 200,
    unseen: Annotated[int, typer.Option(min=1, help="People no model trains on (the chance level).")] = 50,
    bios_per_person: Annotated[int, typer.Option(min=1, help="Training biographies per person (each uses every attribute's next paraphrase).")] = 8,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
    force: ForceOpt = False,
) -> None:
    """Generate fictitious people (six attributes each) and write their biographies, splits and cloze prompts as JSONL.

    Examples:

    \b
      editor target facts --out runs/facts --people 200 --seed 0
    """
    from editor.targets.facts import FactsSpec, write_facts

    counts = write_facts(out, FactsSpec(seed=seed, people=people, unseen=unseen, bios_per_person=bios_per_person), force=force)
    for name, n in counts.items():
        console.print(f"{name}: {n}")
    typer.echo(str(out))


@target_app.command("facts-eval")
@user_errors
def facts_eval(
    data: Annotated[Path, typer.Option(help="Folder written by `editor target facts`.")],
    model: Annotated[str | None, typer.Option(help="Model name or path (default: tiny-toxic).")] = None,
    oracle: Annotated[str | None, typer.Option(help="Model never trained on the forget people: forget quality of --model against it.")] = None,
    split: Annotated[
        list[str] | None, typer.Option("--split", help="Splits to score (repeatable; the first is the forget split). Default: forget10, retain, unseen.")
    ] = None,
    phrasing: Annotated[str, typer.Option(help="Cloze phrasing: heldout (paraphrases never trained on) or train.")] = "heldout",
    people: Annotated[int | None, typer.Option(min=0, help="People per split, sampled with --seed (0 = all). Default: all.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the people sample.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Attribute accuracy and truth ratios of a model per split of fictitious people; forget quality against an oracle.

    Examples:

    \b
      editor target facts-eval --data runs/facts --model runs/tiny-facts --oracle runs/tiny-facts-retain --people 50 --json
    """
    from editor.errors import EditorError
    from editor.model_io import load_model, resolve_model
    from editor.target_data import check_facts_folder

    check_facts_folder(data, "--data")
    known = set(json.loads((data / "splits.json").read_text(encoding="utf-8")))
    if unknown := [s for s in split or () if s not in known]:
        raise EditorError(f"--split {', '.join(unknown)}: not in {data}/splits.json; known: {', '.join(sorted(known))}")
    if phrasing not in ("heldout", "train"):
        raise EditorError(f"--phrasing {phrasing}: heldout or train")
    resolve_model(model)  # before torch loads
    if oracle is not None:
        resolve_model(oracle, "--oracle")

    from evals.facts import FACT_SPLITS, facts_report

    splits = tuple(split or FACT_SPLITS)
    lm, tok = load_model(model)
    result = facts_report(lm, tok, data, splits, phrasing, people, seed, oracle=load_model(oracle) if oracle is not None else None)
    if as_json:
        emit_json({k: v for k, v in result.items() if k != "truth_ratios"})
        return
    for name, s in result["splits"].items():
        typer.echo(f"{name}: accuracy {s['accuracy']:.3f}, median truth ratio {s['truth_ratio_median']:.3f} ({s['items']} prompts)")
    if "forget_quality" in result:
        typer.echo(f"forget quality ({splits[0]}): {result['forget_quality']:.3g}")
