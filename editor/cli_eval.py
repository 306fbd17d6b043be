"""`editor eval` (capability, toxicity, robustness of any model) and `editor target eval-assets` (its scorer and prompts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from editor.cli_common import JsonOpt, TextFieldOpt, emit_json, user_errors
from editor.console import console


def _scorer_dir() -> Path:
    from editor.paths import EXAMPLES

    return EXAMPLES / "scorer"


def _prompts_file() -> Path:
    from editor.paths import EXAMPLES

    return EXAMPLES / "prompts" / "tweets.jsonl"


def _read_json(path: Path) -> dict:
    import json

    from editor.errors import EditorError

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise EditorError(f"cannot read {path}: {e}") from None


def load_for_eval(model: str | None, adapter: Path | None):
    """(model for lm-eval, plain model for everything else, tokenizer, description).

    `--adapter DIR`, or `--model DIR` holding only a PEFT adapter, gives base + adapter: lm-eval sees the
    unmerged PeftModel, the rest a merged copy. An `editor forget` output directory holds the merged model at
    its root, which is what is loaded.
    """
    import copy
    import warnings

    from editor.errors import EditorError
    from editor.model_io import DEFAULT_MODEL, load_model, resolve_model

    if adapter is None and model and (Path(model) / "adapter_config.json").is_file() and not (Path(model) / "config.json").is_file():
        adapter, model = Path(model), None
    if adapter is None:
        lm, tok = load_model(model)
        path = resolve_model(model)
        info = {"name": Path(path).name if Path(path).exists() else path, "path": path}
        if (Path(path) / "adapter" / "adapter_config.json").is_file():
            info["note"] = "editor forget output: the merged model at its root was evaluated"
        return lm, lm, tok, info
    if not (adapter / "adapter_config.json").is_file():
        raise EditorError(f"{adapter} is not a PEFT adapter directory (no adapter_config.json)")
    base = model or _read_json(adapter / "adapter_config.json").get("base_model_name_or_path") or DEFAULT_MODEL
    try:
        base_model, tok = load_model(base)
    except EditorError as e:
        raise EditorError(f"{e} (the adapter's base model; pass --model BASE to choose another)") from None
    from peft import PeftModel

    try:
        peft_model = PeftModel.from_pretrained(base_model, str(adapter), is_trainable=False)
    except Exception as e:  # peft raises ValueError/KeyError/RuntimeError for a mismatched adapter
        raise EditorError(f"could not apply the adapter {adapter} to {base}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    peft_model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers deprecation noise from copying a PeftModel
        merged = copy.deepcopy(peft_model).merge_and_unload()
    merged.eval()
    path = resolve_model(base)
    return peft_model, merged, tok, {"name": f"{Path(path).name}+{adapter.name}", "path": path, "adapter": str(adapter)}


@user_errors
def evaluate(
    model: Annotated[str | None, typer.Option(help="Model name, directory (full model, PEFT adapter, or `editor forget` output). Default: tiny-toxic.")] = None,
    adapter: Annotated[Path | None, typer.Option(help="PEFT adapter directory applied on --model (default base: the adapter's own).")] = None,
    tasks: Annotated[list[str] | None, typer.Option("--tasks", help="lm-eval task (repeatable): bundled editor_wikitext, editor_forget, editor_retain, editor_toxic_choice, or any lm-eval task name. Default: the four bundled ones. 'none' skips lm-eval.")] = None,
    forget: Annotated[list[str] | None, typer.Option(help="Forget-set documents (repeatable). Default: the held-out toxic tweets.")] = None,
    retain: Annotated[list[str] | None, typer.Option(help="Retain-set documents (repeatable). Default: the held-out benign tweets.")] = None,
    limit: Annotated[int, typer.Option(help="Documents per task and per NLL set (0 = all).")] = 200,
    batch_size: Annotated[int, typer.Option(help="lm-eval batch size.")] = 32,
    toxicity: Annotated[bool, typer.Option("--toxicity", help="Sample continuations of the shipped prompts and score their toxicity.")] = False,
    prompts: Annotated[Path | None, typer.Option(help="Prompt file (JSONL with 'prompt', or one per line). Default: examples/prompts/tweets.jsonl.")] = None,
    n_prompts: Annotated[int, typer.Option("--n-prompts", help="Prompts used (the first N).")] = 25,
    k: Annotated[int, typer.Option("-k", "--samples", help="Samples per prompt (RealToxicityPrompts: 25).")] = 5,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens generated per sample.")] = 20,
    scorer: Annotated[str, typer.Option(help="Toxicity scorer: auto (Detoxify if installed with a local checkpoint, else the project's), project, detoxify.")] = "auto",
    detoxify_checkpoint: Annotated[Path | None, typer.Option(help="Local Detoxify .ckpt (or set DETOXIFY_CHECKPOINT).")] = None,
    robustness: Annotated[bool, typer.Option("--robustness", help="Relearning attack (model vs oracle) and 8/4-bit quantization.")] = False,
    oracle: Annotated[str, typer.Option(help="Model that never learned the forget set, attacked for reference ('none' to skip).")] = "tiny-clean",
    relearn_examples: Annotated[int, typer.Option(help="Forget documents the attacker fine-tunes on.")] = 64,
    relearn_steps: Annotated[int, typer.Option(help="Fine-tuning steps of the attack.")] = 50,
    relearn_lr: Annotated[float, typer.Option(help="Learning rate of the attack (AdamW).")] = 1e-4,
    quant_bits: Annotated[list[int] | None, typer.Option("--quant-bits", help="Bit widths to round weights to (repeatable). Default: 8 and 4.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the report here (JSON), with a .md beside it and PNG plots.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for sampling, pairing and the attack.")] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show lm-eval's own logs and progress bars.")] = False,
    text_field: TextFieldOpt = "text",
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a model: lm-eval capability tasks, forget/retain NLL, and optionally toxicity and robustness.

    Example: editor eval --model runs/demo --toxicity --robustness --out runs/demo-eval/report.json
    """
    import tempfile
    import time

    from editor.data import load_many, load_texts
    from editor.errors import EditorError
    from editor.model_io import load_model
    from editor.paths import HELDOUT
    from evals.harness import TaskError
    from evals.report import render_markdown, write_report
    from evals.suite import EvalData, EvalSettings, run_suite

    start = time.perf_counter()
    task_list = tuple(t for t in (tasks or []) if t.lower() != "none") if tasks else EvalSettings().tasks
    for name, value, low in (("--limit", limit, 0), ("--batch-size", batch_size, 1), ("--n-prompts", n_prompts, 1), ("--samples", k, 1), ("--max-new-tokens", max_new_tokens, 1), ("--relearn-examples", relearn_examples, 1), ("--relearn-steps", relearn_steps, 0)):
        if value < low:
            raise EditorError(f"{name} must be at least {low}, got {value}")
    bits = tuple(quant_bits) if quant_bits else (8, 4)
    if any(not 2 <= b <= 16 for b in bits):
        raise EditorError(f"--quant-bits must be between 2 and 16, got {', '.join(map(str, bits))}")
    if relearn_lr <= 0:
        raise EditorError("--relearn-lr must be positive")
    if out is not None and out.is_dir():
        raise EditorError(f"--out {out} is a directory; give a file name such as {out / 'report.json'}")
    settings = EvalSettings(
        tasks=task_list, limit=limit or None, batch_size=batch_size, toxicity=toxicity, prompts=n_prompts, k=k,
        max_new_tokens=max_new_tokens, robustness=robustness, relearn_examples=relearn_examples,
        relearn_steps=relearn_steps, relearn_lr=relearn_lr, quant_bits=bits, seed=seed, verbose=verbose,
    )
    forget_data = load_many(forget or [str(HELDOUT["toxic"])], text_field)
    retain_data = load_many(retain or [str(HELDOUT["benign"])], text_field)
    data = EvalData(
        forget=forget_data.texts,
        retain=retain_data.texts,
        wikitext=load_texts(HELDOUT["wikitext"]).texts,
        choice_toxic=load_texts(HELDOUT["toxic"]).texts,
        choice_benign=load_texts(HELDOUT["benign"]).texts,
        sources={"forget": forget_data.source, "retain": retain_data.source, "wikitext": str(HELDOUT["wikitext"]), "toxic_choice": f"pairs of {HELDOUT['toxic']} and {HELDOUT['benign']}"},
    )
    if robustness and len(data.forget) <= relearn_examples:
        raise EditorError(f"the forget set has {len(data.forget)} documents; the relearning attack needs more than --relearn-examples {relearn_examples}")
    prompt_rows, tox_scorer = None, None
    if toxicity:
        from evals.scorer import load_scorer
        from evals.toxicity import read_prompts

        prompt_path = prompts or _prompts_file()
        if not prompt_path.is_file():
            raise EditorError(f"no such prompt file: {prompt_path}")
        try:
            prompt_rows = read_prompts(prompt_path)
            tox_scorer = load_scorer(scorer, project_dir=_scorer_dir(), detoxify_checkpoint=detoxify_checkpoint)
        except ValueError as e:
            raise EditorError(str(e)) from None
        data.sources["prompts"] = str(prompt_path)
    lm_model, plain, tok, info = load_for_eval(model, adapter)
    oracle_triple = None
    if robustness and oracle.lower() != "none":
        from editor.model_io import resolve_model

        if resolve_model(oracle) == info["path"] and "adapter" not in info:
            oracle_triple = (plain, tok, oracle)  # the model is its own oracle: the suite reuses its curve
        else:
            o_model, o_tok = load_model(oracle)
            oracle_triple = (o_model, o_tok, oracle)

    def status(message: str) -> None:
        console.print(f"[dim]{time.perf_counter() - start:5.1f}s[/] {message}", highlight=False)

    try:
        with tempfile.TemporaryDirectory(prefix="editor-eval-") as workdir:
            report = run_suite(lm_model, tok, data, settings, workdir=workdir, plain_model=plain, scorer=tox_scorer, prompts=prompt_rows, oracle=oracle_triple, status=status)
    except (TaskError, ValueError) as e:
        raise EditorError(str(e)) from None
    from editor import __version__

    report = {"editor_version": __version__, "model": info, **report}
    report["seconds"] = round(time.perf_counter() - start, 2)
    if out is not None:
        paths = write_report(out, report)
        console.print(render_markdown(report, {k: v.name for k, v in paths.items() if k not in {"json", "markdown"}}), markup=False, highlight=False, soft_wrap=True)
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


@user_errors
def eval_assets(
    scorer_out: Annotated[Path | None, typer.Option(help="Scorer directory (default: examples/scorer).")] = None,
    prompts_out: Annotated[Path | None, typer.Option(help="Prompt file (default: examples/prompts/tweets.jsonl).")] = None,
    n_prompts: Annotated[int, typer.Option("--n-prompts", help="Prompts to write (half from toxic, half from benign held-out tweets).")] = 100,
    wikitext_negatives: Annotated[int, typer.Option(help="WikiText training lines added as non-toxic examples.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed for sampling and training.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Train the project's toxicity scorer on the training tweets and write the toxicity prompts from held-out ones.

    The scorer never sees a held-out tweet; its accuracy on them is measured and stored in scorer.json.
    Example: editor target eval-assets
    """
    import random
    import time

    import torch
    from transformers import AutoTokenizer

    from editor.data import load_texts
    from editor.errors import EditorError
    from editor.paths import HELDOUT, TOKENIZER, TRAIN
    from evals.scorer import classification_metrics, file_sha256, train_token_scorer
    from evals.toxicity import make_prompts, write_prompts

    start = time.perf_counter()
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(TOKENIZER, local_files_only=True)
    toxic, benign = load_texts(TRAIN["toxic"]).texts, load_texts(TRAIN["benign"]).texts
    wiki = [t for t in load_texts(TRAIN["wikitext"]).texts if not t.strip().startswith("=")]
    wiki = random.Random(seed).sample(wiki, min(wikitext_negatives, len(wiki)))
    console.print(f"training the scorer on {len(toxic)} toxic, {len(benign)} benign tweets and {len(wiki)} WikiText lines", highlight=False)
    model = train_token_scorer(tok, toxic, benign + wiki, seed=seed)
    h_toxic, h_benign = load_texts(HELDOUT["toxic"]).texts, load_texts(HELDOUT["benign"]).texts
    h_wiki = [t for t in load_texts(HELDOUT["wikitext"]).texts if not t.strip().startswith("=")]
    heldout = classification_metrics(model.score(h_toxic), model.score(h_benign))
    wiki_scores = model.score(h_wiki)
    heldout["wikitext_lines"] = len(h_wiki)
    heldout["wikitext_flagged_fraction"] = sum(s >= 0.5 for s in wiki_scores) / len(wiki_scores)
    meta = {
        "trained_on": {str(p.relative_to(p.parents[2])): file_sha256(p) for p in (TRAIN["toxic"], TRAIN["benign"], TRAIN["wikitext"])},
        "train_counts": {"toxic": len(toxic), "benign": len(benign), "wikitext_lines": len(wiki)},
        "heldout_metrics": heldout,
        "heldout_data": {str(p.relative_to(p.parents[2])): file_sha256(p) for p in (HELDOUT["toxic"], HELDOUT["benign"], HELDOUT["wikitext"])},
        "features": "lower-cased token ids of the shipped BPE tokenizer, binary presence",
        "seed": seed,
    }
    try:
        rows = make_prompts(h_toxic, h_benign, n=n_prompts, seed=seed)
    except ValueError as e:
        raise EditorError(str(e)) from None
    scorer_dir = model.save(scorer_out or _scorer_dir(), extra=meta)
    prompt_path = write_prompts(prompts_out or _prompts_file(), rows)
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
