"""`editor eval` (capability, toxicity, robustness of any model) and `editor target eval-assets` (its scorer and prompts)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from editor.cli.common import ForceOpt, JsonOpt, TextFieldOpt, emit_json, user_errors
from editor.console import console

if TYPE_CHECKING:
    from lmkit.texts import TextDataset


class ScorerChoice(str, Enum):
    auto = "auto"
    project = "project"
    detoxify = "detoxify"


@user_errors
def evaluate(
    model: Annotated[str | None, typer.Option(help="Model name, directory (full model, PEFT adapter, or `editor forget` output). Default: tiny-toxic.")] = None,
    adapter: Annotated[Path | None, typer.Option(help="PEFT adapter directory applied on --model (default base: the adapter's own).")] = None,
    tasks: Annotated[
        list[str] | None,
        typer.Option(
            "--tasks",
            metavar="TASK",
            help="lm-eval task (repeatable): bundled editor_wikitext, editor_forget, editor_retain, editor_toxic_choice, or any lm-eval task name. Default: the four bundled ones. 'none' skips lm-eval.",
        ),
    ] = None,
    forget: Annotated[
        list[str] | None,
        typer.Option(
            metavar="DATA",
            help="Forget-set documents (repeatable). Default: the model's target's held-out forget set (toxic tweets; tiny-facts: the forget people's paraphrases).",
        ),
    ] = None,
    retain: Annotated[
        list[str] | None,
        typer.Option(
            metavar="DATA",
            help="Retain-set documents (repeatable). Default: the target's held-out retain set (benign tweets; tiny-facts: the retained people's paraphrases).",
        ),
    ] = None,
    facts: Annotated[
        str | None,
        typer.Option(
            metavar="DIR",
            help="An `editor target facts` folder: attribute accuracy per split and forget quality. Default: examples/data/facts for tiny-facts models; 'none' skips.",
        ),
    ] = None,
    facts_people: Annotated[int | None, typer.Option(min=1, help="People scored per facts split (a seeded sample). Default: all.")] = None,
    limit: Annotated[int | None, typer.Option(min=0, help="Documents per task and per NLL set (0 = all). Default: 200.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="lm-eval batch size. Default: 32.")] = None,
    toxicity: Annotated[bool, typer.Option("--toxicity", help="Sample continuations of the shipped prompts and score their toxicity.")] = False,
    prompts: Annotated[Path | None, typer.Option(help="Prompt file (JSONL with 'prompt', or one per line). Default: examples/prompts/tweets.jsonl.")] = None,
    n_prompts: Annotated[int | None, typer.Option("--n-prompts", help="Prompts used (the first N). Default: 25.")] = None,
    k: Annotated[int | None, typer.Option("-k", "--samples", help="Samples per prompt (RealToxicityPrompts: 25). Default: 5.")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="Tokens generated per sample. Default: 20.")] = None,
    scorer: Annotated[
        ScorerChoice, typer.Option(help="Toxicity scorer: auto (Detoxify if installed with a local checkpoint, else the project's), project, detoxify.")
    ] = ScorerChoice.auto,
    detoxify_checkpoint: Annotated[Path | None, typer.Option(help="Local Detoxify .ckpt (or set DETOXIFY_CHECKPOINT).")] = None,
    robustness: Annotated[bool, typer.Option("--robustness", help="Relearning attack (model vs oracle) and 8/4-bit quantization.")] = False,
    oracle: Annotated[
        str | None,
        typer.Option(
            help="Model that never learned the forget set: attacked for reference, and the reference of facts' forget quality ('none' to skip). Default: the shipped model's oracle."
        ),
    ] = None,
    relearn_examples: Annotated[int | None, typer.Option(help="Forget documents the attacker fine-tunes on. Default: 512.")] = None,
    relearn_steps: Annotated[int | None, typer.Option(help="Fine-tuning steps of the attack. Default: 50.")] = None,
    relearn_lr: Annotated[float | None, typer.Option(help="Learning rate of the attack (AdamW). Default: 3e-4.")] = None,
    quant_bits: Annotated[
        list[int] | None, typer.Option("--quant-bits", metavar="BITS", help="Bit widths to round weights to (repeatable). Default: 8 and 4.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the report here (JSON), with a .md beside it and PNG plots.")] = None,
    force: Annotated[bool, typer.Option(help="Replace a report that an earlier `editor eval --out` wrote (never another file).")] = False,
    seed: Annotated[int | None, typer.Option(help="Seed for sampling, pairing and the attack. Default: 0.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show lm-eval's own logs and progress bars.")] = False,
    write_tasks: Annotated[
        Path | None,
        typer.Option(
            "--write-tasks",
            metavar="DIR",
            help="Write the bundled lm-eval tasks, with the documents chosen (--forget, --retain), to DIR for `lm_eval --include_path DIR`; evaluate nothing.",
        ),
    ] = None,
    text_field: TextFieldOpt = "text",
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a model: lm-eval capability tasks, forget/retain NLL, and optionally toxicity and robustness.

    Examples:

    \b
      editor eval --model runs/demo --toxicity --robustness --out runs/demo-eval/report.json
      editor eval --forget my-forget.parquet --write-tasks runs/tasks    # then: lm_eval --include_path runs/tasks ...
    """
    import time

    from editor.errors import EditorError
    from editor.model_io import check_eval_inputs, default_data, default_oracle, resolve_model
    from editor.paths import PROMPTS
    from editor.target_data import check_facts_folder
    from evals.report import is_report, render_markdown, report_files, write_report
    from lmkit.files import check_replaceable_file, check_writable_parent
    from lmkit.texts import load_many

    start = time.perf_counter()
    # Everything the user typed is checked before torch and lm-eval load (seconds): output, data, prompts, model.
    if out is not None:
        ours = is_report(out)
        for path in report_files(out):
            check_replaceable_file(path, force, ours, "a report of editor eval")
        check_writable_parent(out)
    target = default_data(model)
    forget_data = load_many(forget or [str(target.heldout_forget)], text_field)
    retain_data = load_many(retain or [str(target.heldout_retain_other)], text_field)
    facts_dir = None if facts and facts.lower() == "none" else Path(facts) if facts else target.facts
    if facts_dir is not None:
        check_facts_folder(facts_dir)
    if write_tasks is not None:
        _write_tasks(write_tasks, forget_data, retain_data, seed or 0, force, model, as_json)
        return
    prompt_path = prompts or PROMPTS
    if toxicity:
        from evals.toxicity import read_prompts

        if not prompt_path.is_file():
            raise EditorError(f"--prompts {prompt_path}: no such file")
        try:
            read_prompts(prompt_path)  # checked before torch loads; api.evaluate reads it again
        except ValueError as e:
            raise EditorError(str(e)) from None
    if detoxify_checkpoint is not None and not detoxify_checkpoint.is_file():
        raise EditorError(f"--detoxify-checkpoint {detoxify_checkpoint}: no such file")
    check_eval_inputs(model, adapter)
    wants_oracle = robustness or facts_dir is not None
    if wants_oracle and oracle and oracle.lower() != "none":
        resolve_model(oracle, "--oracle")

    from editor import api
    from editor.cli.common import settings_from_options
    from editor.model_io import load_for_eval
    from editor.paths import SCORER
    from evals.suite import SuiteSettings

    settings = settings_from_options(
        SuiteSettings,
        {
            "--tasks": ("tasks", None if tasks is None else tuple(t for t in tasks if t.lower() != "none")),
            "--limit": ("limit", None if limit is None else (limit or None)),
            "--batch-size": ("batch_size", batch_size),
            "--toxicity": ("toxicity", toxicity),
            "--n-prompts": ("prompts", n_prompts),
            "--samples": ("k", k),
            "--max-new-tokens": ("max_new_tokens", max_new_tokens),
            "--robustness": ("robustness", robustness),
            "--relearn-examples": ("relearn.docs", relearn_examples),
            "--relearn-steps": ("relearn.steps", relearn_steps),
            "--relearn-lr": ("relearn.lr", relearn_lr),
            "--quant-bits": ("quant_bits", tuple(quant_bits) if quant_bits else None),
            "--facts-people": ("facts_people", facts_people),
            "--seed": ("seed", seed),
            "--verbose": ("verbose", verbose),
        },
        "eval settings",
        explicit_none={"--limit"} if limit == 0 else set(),
    )
    # The target's own attack set belongs to its own forget set (tiny-facts: 10% of the forget people).
    own_attack = robustness and not forget and target.relearn_attack and target.relearn_heldout
    relearn_sets = (target.relearn_attack, target.relearn_heldout) if own_attack else None
    if robustness and relearn_sets is None and len(forget_data) <= settings.relearn.docs:
        raise EditorError(f"the forget set has {len(forget_data)} documents; the relearning attack needs more than --relearn-examples {settings.relearn.docs}")
    tox_scorer = None
    if toxicity:
        from evals.scorer import load_scorer

        try:
            tox_scorer = load_scorer(scorer.value, project_dir=SCORER, detoxify_checkpoint=detoxify_checkpoint)
        except ValueError as e:
            raise EditorError(f"--scorer {scorer.value}: {e}") from None
    lm_model, plain, tok, info = load_for_eval(model, adapter)
    oracle_triple = None
    oracle = oracle or default_oracle(info["path"] if "adapter" not in info else None) or "none"
    if wants_oracle and oracle.lower() != "none":
        if resolve_model(oracle) == info["path"] and "adapter" not in info:
            oracle_triple = (plain, tok, oracle)  # the model is its own oracle: the suite reuses its curve
        else:
            o_model, o_tok = api.load_model(oracle)
            oracle_triple = (o_model, o_tok, oracle)

    def status(message: str) -> None:
        console.print(f"[dim]{time.perf_counter() - start:5.1f}s[/] {message}", highlight=False)

    report = api.evaluate(
        lm_model,
        tok,
        forget=forget_data,
        retain=retain_data,
        settings=settings,
        plain_model=plain,
        scorer=tox_scorer,
        prompts=prompt_path if toxicity else None,
        oracle=oracle_triple,
        facts=facts_dir,
        relearn_sets=relearn_sets,
        status=status,
    )
    from editor import __version__

    report = {"editor_version": __version__, "model": info, **report}
    report["seconds"] = round(time.perf_counter() - start, 2)
    if out is not None:
        paths = write_report(out, report)
        console.print(
            render_markdown(report, {k: v.name for k, v in paths.items() if k not in {"json", "markdown"}}), markup=False, highlight=False, soft_wrap=True
        )
        if as_json:
            emit_json(report)
        else:
            for key in ("json", "markdown", "relearn", "quantization"):
                if key in paths:
                    typer.echo(str(paths[key]))
        return
    if as_json:
        emit_json(report)
        return
    typer.echo(render_markdown(report), nl=False)


def _write_tasks(dest: Path, forget: TextDataset, retain: TextDataset, seed: int, force: bool, model: str | None, as_json: bool) -> None:
    """`--write-tasks DIR`: the four bundled tasks as ready lm-eval files (YAML in DIR, documents in DIR/data), atomically."""
    from lmkit.files import atomic_dir, check_replaceable, check_writable_parent

    check_replaceable(dest, force, "--write-tasks")  # before anything heavy is imported
    check_writable_parent(dest, "--write-tasks")

    from editor.target_data import eval_data
    from evals.harness import BUNDLED, write_task_files
    from evals.suite import bundled_docs

    docs = bundled_docs(eval_data(forget, retain), seed)
    with atomic_dir(dest, "tasks", force=force, option="--write-tasks") as tmp:
        # lm-eval reads data_files relative to the current folder, not the YAML: the YAMLs name the final folder.
        write_task_files(tmp, tmp / "data", docs, final_data_dir=dest / "data")
    command = f"lm_eval --model hf --model_args pretrained={model or 'MODEL_DIR'} --include_path {dest} --tasks {','.join(BUNDLED)}"
    if as_json:
        emit_json({"tasks_dir": str(dest), "tasks": list(BUNDLED), "documents": {k: len(v) for k, v in docs.items()}, "command": command})
        return
    console.print(f"wrote {', '.join(BUNDLED)}; run them with:\n  {command}", highlight=False, markup=False, soft_wrap=True)
    typer.echo(str(dest))


@user_errors
def eval_assets(
    scorer_out: Annotated[Path | None, typer.Option(help="Scorer directory (default: examples/scorer).")] = None,
    prompts_out: Annotated[Path | None, typer.Option(help="Prompt file (default: examples/prompts/tweets.jsonl).")] = None,
    n_prompts: Annotated[int, typer.Option("--n-prompts", min=2, help="Prompts to write (half from toxic, half from benign held-out tweets).")] = 100,
    wikitext_negatives: Annotated[int, typer.Option(min=0, help="WikiText training lines added as non-toxic examples.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed for sampling and training.")] = 0,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Train the project's toxicity scorer on the training tweets and write the toxicity prompts from held-out ones.

    The scorer never sees a held-out tweet; its accuracy on them is measured and stored in scorer.json.
    Examples:

    \b
      editor target eval-assets --force    # rebuild the shipped ones
      editor target eval-assets --scorer-out runs/scorer --prompts-out runs/prompts.jsonl
    """
    import time

    from editor.errors import EditorError
    from editor.paths import EXAMPLES, HELDOUT, PROMPTS, SCORER, TOKENIZER, TRAIN
    from evals.toxicity import is_prompt_file
    from lmkit.files import check_replaceable, check_replaceable_file, check_writable_parent
    from lmkit.texts import load_texts

    start = time.perf_counter()
    check_replaceable(scorer_out or SCORER, force, "--scorer-out")
    check_writable_parent(scorer_out or SCORER, "--scorer-out")
    prompt_file = prompts_out or PROMPTS
    check_replaceable_file(prompt_file, force, is_prompt_file(prompt_file), "a prompt file of editor", "--prompts-out")
    check_writable_parent(prompt_file, "--prompts-out")

    import torch
    from transformers import AutoTokenizer

    from evals.scorer import train_project_scorer
    from evals.toxicity import make_prompts, write_prompts

    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(TOKENIZER, local_files_only=True)
    train = {k: load_texts(TRAIN[k]).texts for k in ("toxic", "benign", "wikitext")}
    heldout_texts = {k: load_texts(HELDOUT[k]).texts for k in ("toxic", "benign", "wikitext")}
    console.print(
        f"training the scorer on {len(train['toxic'])} toxic, {len(train['benign'])} benign tweets and up to {wikitext_negatives} WikiText lines",
        highlight=False,
    )
    files = {str(p.relative_to(EXAMPLES)): p for p in (*[TRAIN[k] for k in train], *[HELDOUT[k] for k in heldout_texts])}
    model, meta = train_project_scorer(tok, train, heldout_texts, files, wikitext_negatives=wikitext_negatives, seed=seed)
    heldout = meta["heldout_metrics"]
    h_toxic, h_benign = heldout_texts["toxic"], heldout_texts["benign"]
    try:
        rows = make_prompts(h_toxic, h_benign, n=n_prompts, seed=seed)
    except ValueError as e:
        raise EditorError(str(e)) from None
    scorer_dir = model.save(scorer_out or SCORER, extra=meta, force=force)
    prompt_path = write_prompts(prompt_file, rows)
    result = {"scorer": str(scorer_dir), "prompts": str(prompt_path), "heldout_metrics": heldout, "seconds": round(time.perf_counter() - start, 1)}
    if as_json:
        emit_json(result)
        return
    console.print(
        f"held-out tweets: accuracy {heldout['accuracy']:.3f}, balanced {heldout['balanced_accuracy']:.3f}, ROC AUC {heldout['roc_auc']:.3f} "
        f"({heldout['n_toxic']} toxic, {heldout['n_nontoxic']} benign); WikiText lines flagged {heldout['wikitext_flagged_fraction']:.3f}",
        highlight=False,
    )
    typer.echo(str(scorer_dir))
    typer.echo(str(prompt_path))
