"""`editor eval` as one library call: capability (lm-eval), native NLL, toxicity, robustness → a report dict.

Everything here takes models and texts that the caller loaded; nothing reads the project's files, so the
same function judges any causal LM (edited or not, merged or base + PEFT adapter).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, PositiveInt

from decompose.config_base import BaseConfig
from evals.harness import BUNDLED
from evals.robustness import RelearnSettings


class SuiteSettings(BaseConfig):
    """Every knob of `editor eval`, with its default (fast on the shipped tiny models); validated on construction."""

    tasks: tuple[str, ...] = Field(BUNDLED, description="lm-eval tasks: bundled editor_* ones or any lm-eval task name.")
    limit: PositiveInt | None = Field(200, description="Documents per task and per NLL set; None = all.")
    batch_size: PositiveInt = Field(32, description="lm-eval HFLM batch size.")
    toxicity: bool = Field(False, description="Sample continuations of the prompts and score their toxicity.")
    prompts: PositiveInt = Field(25, description="Prompts used from the prompt file (the first N).")
    k: PositiveInt = Field(5, description="Samples per prompt (RealToxicityPrompts uses 25).")
    max_new_tokens: PositiveInt = Field(20, description="Tokens generated per sample.")
    top_p: float = Field(0.9, gt=0, le=1, description="Nucleus sampling threshold.")
    robustness: bool = Field(False, description="Relearning attack and quantization.")
    relearn: RelearnSettings = Field(default_factory=RelearnSettings, description="The relearning attack (the same config as `editor compare`).")
    quant_bits: tuple[Annotated[int, Field(ge=2, le=16)], ...] = Field((8, 4), description="Bit widths to round weights to.")
    facts_people: PositiveInt | None = Field(None, description="People scored per split of a facts target (a seeded sample; None = all).")
    seed: int = Field(0, description="Seeds sampling, pairing and the attack.")
    verbose: bool = Field(False, description="Show lm-eval's own logs and progress bars.")


@dataclass
class EvalData:
    """The documents an evaluation reads. `choice_toxic`/`choice_benign` build the toxic-vs-benign choice task."""

    forget: list[str]
    retain: list[str]
    wikitext: list[str]
    choice_toxic: list[str]
    choice_benign: list[str]
    sources: dict[str, str] = field(default_factory=dict)
    facts: Path | None = None  # an `editor target facts` folder: attribute accuracy, truth ratios, forget quality
    # The relearning attack's own texts and what it is measured on (None: a seeded split of `forget`); the facts
    # target attacks 10% of the forget people's biographies and measures the others' held-out paraphrases.
    attack: list[str] | None = None
    attack_measured: list[str] | None = None


def _cap(texts: list[str], limit: int | None) -> list[str]:
    return texts if not limit else texts[:limit]


def _nll_row(model, tokenizer, texts: list[str]) -> dict:
    from lmkit.nll import mean_nll

    r = mean_nll(model, tokenizer, texts)
    return {"nll": r.mean, "perplexity": r.perplexity, "tokens": r.tokens, "documents": r.documents}


def _facts(model, tokenizer, folder: Path, settings: SuiteSettings, oracle, status: Callable[[str], None]) -> dict:
    """Attribute accuracy per split on held-out paraphrases; TOFU's forget quality when an oracle is given."""
    from evals.facts import facts_report

    t0 = time.perf_counter()
    status("facts: attribute accuracy on held-out paraphrases" + (f", truth ratios of the oracle {oracle[2]}" if oracle is not None else ""))
    result = facts_report(model, tokenizer, folder, people=settings.facts_people, seed=settings.seed, oracle=oracle[:2] if oracle is not None else None)
    result.pop("truth_ratios")
    if oracle is not None:
        result["oracle"] = oracle[2]
    result["folder"] = str(folder)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    return result


def split_attack(forget: list[str], n_attack: int, limit: int | None, seed: int) -> tuple[list[str], list[str]]:
    """Shuffle the forget set (seeded) into the attacker's fine-tuning texts and disjoint texts to measure."""
    if len(forget) < n_attack + 1:
        raise ValueError(f"relearning needs more than {n_attack} forget documents (got {len(forget)}); lower --relearn-examples")
    order = list(range(len(forget)))
    random.Random(seed).shuffle(order)
    attack = [forget[i] for i in order[:n_attack]]
    measured = [forget[i] for i in order[n_attack:]]
    return attack, _cap(measured, limit)


def bundled_docs(data: EvalData, seed: int = 0) -> dict[str, list]:
    """The documents of each bundled lm-eval task (`evals.harness.write_task_files`)."""
    from evals.harness import choice_pairs

    return {
        "editor_wikitext": data.wikitext,
        "editor_forget": data.forget,
        "editor_retain": data.retain,
        "editor_toxic_choice": choice_pairs(data.choice_toxic, data.choice_benign, seed=seed),
    }


def run_suite(
    model,
    tokenizer,
    data: EvalData,
    settings: SuiteSettings,
    *,
    workdir,
    plain_model=None,
    scorer=None,
    prompts: list[dict] | None = None,
    oracle=None,
    status: Callable[[str], None] = lambda _: None,
) -> dict:
    """Run the requested parts and return the report (see `evals.report.render_markdown` for how it reads).

    `model` goes to lm-eval as is (a PeftModel stays unmerged); `plain_model` (default: `model`) is used for
    NLL, sampling and the attacks. `oracle` = (model, tokenizer, name) of a model that never learned the
    forget set, attacked the same way for reference. `scorer` and `prompts` are needed with `toxicity`.
    """
    from evals.harness import run_lm_eval, split_task_names

    start = time.perf_counter()
    plain = plain_model if plain_model is not None else model
    report: dict = {"settings": settings.model_dump(mode="json"), "data": dict(data.sources)}

    bundled, standard = split_task_names(list(settings.tasks))
    if bundled or standard:
        status("lm-eval: " + ", ".join(bundled + standard))
        docs = bundled_docs(data, settings.seed)
        report["capability"] = run_lm_eval(
            model,
            tokenizer,
            bundled + standard,
            workdir=workdir,
            docs={n: docs[n] for n in bundled},
            limit=settings.limit,
            batch_size=settings.batch_size,
            verbose=settings.verbose,
        )

    status("NLL per token")
    sets = {"forget": _cap(data.forget, settings.limit), "retain": _cap(data.retain, settings.limit), "wikitext": _cap(data.wikitext, settings.limit)}
    report["nll"] = {name: _nll_row(plain, tokenizer, texts) for name, texts in sets.items()}

    if data.facts is not None:
        report["facts"] = _facts(plain, tokenizer, data.facts, settings, oracle, status)

    if settings.toxicity:
        from evals.toxicity import toxicity_eval

        if scorer is None or not prompts:
            raise ValueError("toxicity needs a scorer and prompts")
        use = prompts[: settings.prompts]
        status(f"toxicity: {len(use)} prompts x {settings.k} samples")
        t0 = time.perf_counter()
        report["toxicity"] = toxicity_eval(
            plain, tokenizer, use, scorer, k=settings.k, max_new_tokens=settings.max_new_tokens, top_p=settings.top_p, seed=settings.seed
        )
        report["toxicity"]["seconds"] = round(time.perf_counter() - t0, 2)

    if settings.robustness:
        from evals.robustness import quantize_weights, relearn_curve

        t0 = time.perf_counter()
        if data.attack is not None and data.attack_measured is not None:
            attack, measured = data.attack[: settings.relearn.docs], _cap(data.attack_measured, settings.limit)
        else:
            attack, measured = split_attack(data.forget, settings.relearn.docs, settings.limit, settings.seed)
        retain = _cap(data.retain, settings.limit)
        r = settings.relearn
        kwargs: dict[str, Any] = dict(steps=r.steps, lr=r.lr, batch_size=r.batch_size, eval_every=r.eval_every, seed=settings.seed)
        status(f"relearning attack: {r.steps} steps on {len(attack)} forget documents")
        curves = {"model": relearn_curve(plain, tokenizer, attack, measured, retain_texts=retain, **kwargs)}
        if oracle is not None:
            o_model, o_tok, o_name = oracle
            if o_model is plain:  # evaluating the oracle itself: same deterministic attack, same curve
                curves["oracle"] = [dict(p) for p in curves["model"]]
            else:
                status(f"relearning attack on the oracle {o_name}")
                curves["oracle"] = relearn_curve(o_model, o_tok, attack, measured, retain_texts=retain, **kwargs)
        relearn = {
            "attack_documents": len(attack),
            "measured_documents": len(measured),
            **{k: v for k, v in kwargs.items()},
            "oracle": oracle[2] if oracle is not None else None,
            "curves": curves,
        }
        for name, curve in curves.items():
            # nats/token the attack won back: at its best step (an attacker keeps the best checkpoint) and at the end
            relearn[f"{name}_recovery"] = curve[0]["nll"] - min(p["nll"] for p in curve)
            relearn[f"{name}_recovery_final"] = curve[0]["nll"] - curve[-1]["nll"]
            relearn[f"{name}_best_nll"] = min(p["nll"] for p in curve)
        quant = [{"bits": 32, "forget_nll": report["nll"]["forget"]["nll"], "retain_nll": report["nll"]["retain"]["nll"]}]
        for bits in settings.quant_bits:
            status(f"quantization: {bits}-bit")
            q = quantize_weights(plain, bits)
            quant.append({"bits": bits, "forget_nll": _nll_row(q, tokenizer, sets["forget"])["nll"], "retain_nll": _nll_row(q, tokenizer, retain)["nll"]})
            del q
        report["robustness"] = {
            "relearn": relearn,
            "quantization": {"scheme": "symmetric per-output-channel round-to-nearest of every 2-D Linear/Conv1D weight", "rows": quant},
            "seconds": round(time.perf_counter() - t0, 2),
        }
    report["seconds"] = round(time.perf_counter() - start, 2)
    return report
