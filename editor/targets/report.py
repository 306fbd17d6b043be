"""Mean held-out NLL of target models, the measure `editor forget` will have to move, and sample generations."""

from __future__ import annotations

from rich.table import Table

from editor.console import console
from editor.model_io import load_model
from editor.paths import HELDOUT
from lmkit.texts import load_texts

BENIGN_PROMPTS = ["The city of", "In 1998 , the band", "I just got home and"]


def target_report(models: list[str], prompts: list[str] = BENIGN_PROMPTS) -> dict:
    from evals.generation import sample
    from lmkit.nll import mean_nll

    sets = {name: load_texts(path).texts for name, path in HELDOUT.items()}
    result: dict = {"nll": {}, "tokens": {}, "samples": {}}
    for name in models:
        model, tok = load_model(name)
        scores = {s: mean_nll(model, tok, texts) for s, texts in sets.items()}
        result["nll"][name] = {s: round(v.mean, 4) for s, v in scores.items()}
        result["tokens"] = {s: v.tokens for s, v in scores.items()}
        result["samples"][name] = {p: c[0] for p, c in zip(prompts, sample(model, tok, prompts, n=1, max_new_tokens=24))}
    return result


def render_report(result: dict) -> None:
    table = Table(title="mean NLL per token on held-out data (nats; lower is better)")
    table.add_column("model")
    sets = list(next(iter(result["nll"].values())))
    for s in sets:
        table.add_column(f"{s} ({result['tokens'][s]:,} tok)", justify="right")
    for name, row in result["nll"].items():
        table.add_row(name, *(f"{row[s]:.3f}" for s in sets))
    console.print(table)
    for name, samples in result["samples"].items():
        console.print(f"[bold]{name}[/]")
        for prompt, text in samples.items():
            console.print(f"  {prompt} ▸ {text}", highlight=False, markup=False)
