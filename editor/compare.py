"""`editor compare`: VPD against the baselines on the same model, forget data and retain data.

Every method runs on the same forget and retain sets and sweeps its main strength setting (VPD the
retain budget `max_retain_kl`, GA / GradDiff / NPO the number of steps, the task vector α). Each
point is measured on held-out data only (never used to train the model or to make the edit):

* held-out forget NLL (mean NLL per token, nats; higher = more forgotten), and the fraction of the gap
  to the oracle closed when there is one: (edited − original) / (oracle − original);
* retain damage: the mean over the held-out retain sets of the relative NLL change, edited / original − 1;
* wall time: seconds from the start of the method to that point being ready (a step sweep trains once
  and takes each point on the way, so its times are cumulative; VPD ranks once for every budget).

Every method's points are read the same way (`evals.frontier`): the gap closed at 0.5%, 1% and 2% mean
retain damage and at the oracle's own damage, and retrain-equivalence (the most gap closed with every
retain NLL at or below the oracle's). The best point of each method is the one with the highest held-out
forget NLL whose retain damage is at most `max_damage` (else the least damaging one). Robustness is
compared at matched forgetting: the level every method reaches (at most 50% of the gap), each method's
least damaging point at that level gets the relearning attack (fine-tuning on a few forget documents,
`evals.robustness.relearn_curve`), next to the original model and the oracle. Results: compare.json
(everything), compare.md (tables), pareto.png, relearn.png, facts.png (facts targets).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, PositiveInt

from decompose.config_base import BaseConfig
from editor.compare_data import CompareData
from editor.errors import EditorError
from editor.methods import METHODS
from evals.frontier import LEVELS, Scored, at_level, facts_reading, matched_level, reading
from evals.robustness import RelearnSettings

# Each method sweeps its strength field over its registered default sweep.
DEFAULT_SWEEPS: dict[str, list[float]] = {n: [float(x) for x in m.sweep] for n, m in METHODS.items()}


class CompareSettings(BaseConfig):
    """Every default of `editor compare`, in one place; `--set` overrides any of it (e.g. sweep.ga=[10,20])."""

    methods: list[str] = Field(default_factory=lambda: list(DEFAULT_SWEEPS), description="Methods to run, in order.")
    sweep: dict[str, list[float]] = Field(default_factory=lambda: dict(DEFAULT_SWEEPS), description="Strengths swept, per method.")
    settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-method setting overrides (the method's settings fields), e.g. settings.ga.lr=1e-4."
    )
    max_damage: float = Field(0.02, ge=0, description="Best point: the most forgetting with retain damage at most this (relative).")
    heldout_docs: PositiveInt | None = Field(None, description="Cap on documents per held-out set (sampled); None uses them all.")
    relearn: RelearnSettings = Field(default_factory=RelearnSettings)
    facts_people: PositiveInt | None = Field(40, description="Retained people whose attribute accuracy each point measures (facts targets; None = all).")
    seed: int = Field(0, description="Seeds every sampling.")


# `--quick`: a smoke run (minutes on the shipped default, seconds on a test model), not a result.
_QUICK_VPD = {"stats_docs": 64, "search_docs": 16, "explain_docs": 8}
QUICK: dict[str, Any] = {
    "sweep": {
        **{m: [0.01, 0.1] for m in ("vpd-write", "vpd-scale", "vpd-project", "vpd-remove")},
        "ga": [2, 4],
        "graddiff": [2, 4],
        "npo": [2, 4],
        "task-vector": [1.0, 2.0],
    },
    "settings": {
        "vpd-write": {**_QUICK_VPD, "steps": 10, "snapshot_every": 5, "components": 8},
        "vpd-scale": {**_QUICK_VPD, "steps": 10, "snapshot_every": 5, "components": 8},
        "vpd-project": {**_QUICK_VPD, "curve_points": 4, "components": 16},
        "vpd-remove": {**_QUICK_VPD, "steps": 10, "curve_points": 4},
        "ga": {"batch_size": 4},
        "graddiff": {"batch_size": 4},
        "npo": {"batch_size": 4},
        "task-vector": {"batch_size": 4, "steps": 4},
    },
    "heldout_docs": 48,
    "relearn": {"docs": 8, "steps": 4, "eval_every": 2, "batch_size": 4},
}


@dataclass
class Point:
    method: str
    strength: float
    forget_nll: float
    retain_nll: dict[str, float]
    damage: float
    seconds: float
    size: str  # what changed: "3 components" or "rank 1792 over 28 matrices"
    gap_closed: float | None = None
    retain_vs_oracle: dict[str, float] | None = None  # relative retain NLL difference to the oracle's (≤ 0: no worse)
    facts_accuracy: dict[str, float] | None = None  # facts targets: attribute accuracy of the forget and retained people
    best: bool = False
    relearned: bool = False  # this point got the relearning attack (the method's point at the matched level)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class CompareResult:
    base: dict[str, Any]
    oracle: dict[str, Any] | None
    points: list[Point] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    method_seconds: dict[str, float] = field(default_factory=dict)
    relearn: dict[str, list[dict]] = field(default_factory=dict)
    strength_fields: dict[str, str] = field(default_factory=dict)
    summary: dict[str, dict[str, float | None]] = field(default_factory=dict)  # method → evals.frontier.reading
    facts_summary: dict[str, dict[str, float | None]] = field(default_factory=dict)  # method → evals.frontier.facts_reading
    matched_level: float | None = None  # the gap closed at which methods were relearned
    attack_documents: int = 0  # texts the relearning attack fine-tunes on


def resolve_settings(overrides: list[str] | None, quick: bool) -> CompareSettings:
    from editor.methods import ALIASES, get_method
    from editor.recipe import apply_overrides, validate

    data: dict[str, Any] = {}
    if quick:
        data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in QUICK.items()}
        data["settings"] = {k: dict(v) for k, v in QUICK["settings"].items()}
    apply_overrides(data, overrides or [])
    canonical = lambda name: ALIASES.get(name, name)  # noqa: E731  (`vpd` names the default edit kind everywhere)
    if isinstance(data.get("methods"), list):
        data["methods"] = [canonical(m) for m in data["methods"]]
    for key in ("sweep", "settings"):
        if isinstance(data.get(key), dict):
            data[key] = {canonical(k): v for k, v in data[key].items()}
    data["sweep"] = {**DEFAULT_SWEEPS, **data.get("sweep", {})}
    settings = validate(CompareSettings, data, "compare settings (--set)")
    unknown = set(settings.settings) - set(settings.methods) - set(DEFAULT_SWEEPS)
    if unknown:
        raise EditorError(f"settings for unknown methods: {', '.join(sorted(unknown))}")
    for m in settings.methods:
        get_method(m)
        if not settings.sweep.get(m):
            raise EditorError(f"no sweep for method '{m}': pass --set sweep.{m}=[...]")
        for strength in settings.sweep[m]:  # every point's settings are valid before anything runs
            _method_settings(m, strength, settings)
    return settings


def _method_settings(method: str, strength: float, settings: CompareSettings) -> BaseConfig:
    """The settings of one sweep point: the method's defaults, `settings.<method>` overrides, the strength."""
    from editor.forget import method_settings
    from editor.methods import get_method

    m = get_method(method)
    overrides = settings.settings.get(method, {})
    if m.strength in overrides:
        raise EditorError(f"{method}'s strength '{m.strength}' is swept: set it with sweep.{method}=[...]")
    if m.strength == "steps" and strength != int(strength):
        raise EditorError(f"{method} sweeps a step count: sweep.{method} must hold integers, got {strength:g}")
    return method_settings(m, strength, overrides)


def _heldout_eval(model, tokenizer, data: CompareData, facts: dict[str, list] | None = None) -> dict[str, Any]:
    """Held-out NLLs; with `facts` (cloze items of the forget and retained people), their attribute accuracy."""
    from lmkit.nll import mean_nll

    h: dict[str, Any] = {
        "forget_nll": mean_nll(model, tokenizer, data.heldout_forget).mean,
        "retain_nll": {k: mean_nll(model, tokenizer, v).mean for k, v in data.heldout_retain.items()},
    }
    if facts:
        from evals.facts import accuracy, score_candidates

        h["facts_accuracy"] = {k: accuracy(score_candidates(model, tokenizer, items)) for k, items in facts.items()}
    return h


def _facts_items(data: CompareData, s: CompareSettings) -> dict[str, list] | None:
    """Held-out cloze items of the forget people and of a seeded sample of the retained people."""
    if data.facts is None:
        return None
    from evals.facts import FACT_SPLITS, ClozeFolder, sample_people

    cloze = ClozeFolder(data.facts)
    forget, retain = FACT_SPLITS[0], FACT_SPLITS[1]
    return {"forget": cloze.items(forget), "retain": sample_people(cloze.items(retain), s.facts_people, s.seed)}


def _damage(retain_nll: dict[str, float], base: dict[str, float]) -> float:
    return sum(retain_nll[k] / base[k] - 1 for k in base) / len(base)


def _as_eval(p: Point) -> dict[str, Any]:
    return {"forget_nll": p.forget_nll, "retain_nll": p.retain_nll}


def _scored(h: dict[str, Any], result: CompareResult) -> Scored:
    """One held-out measurement against the original and (when there is one) the oracle: the harness's point."""
    o = result.oracle or {}
    return Scored(h["forget_nll"], h["retain_nll"], result.base["forget_nll"], result.base["retain_nll"], o.get("forget_nll"), o.get("retain_nll"))


def run_compare(
    lm,
    tokenizer,
    data: CompareData,
    settings: CompareSettings,
    decomposition: Path | None,
    oracle: tuple[Any, Any] | None,
    status: Callable[[str], None] = lambda message: None,
    advance: Callable[[], None] = lambda: None,
) -> CompareResult:
    """Run every method's sweep on `lm` (left unedited at the end), measure, pick best points, relearn.

    Every method runs once for its whole sweep (VPD ranks once and reads every budget off one trade-off
    curve; a step sweep trains once). `advance` is called once after the original model and oracle are
    measured and once per method."""
    from decompose.io import load_decomposition
    from decompose.targets import fingerprint
    from editor.methods import get_method
    from editor.methods.base import ForgetInputs, Progress, target_matrices
    from evals.robustness import relearn_curve
    from lmkit.texts import sample_texts

    s = settings
    targets = target_matrices(lm)
    fingerprint_before = fingerprint(list(targets.values()))
    methods = [get_method(m) for m in s.methods]
    dec = None
    if any(m.needs_decomposition for m in methods):  # loaded first: a missing or mismatched decomposition fails before any work
        if decomposition is None or not Path(decomposition).is_dir():
            needs = ", ".join(m.name.upper() for m in methods if m.needs_decomposition)
            raise EditorError(
                f"no decomposition for {needs} ({decomposition or 'none shipped for this model'}): pass --decomposition DIR "
                f"or leave {needs.lower()} out (--set methods=[...])"
            )
        dec = load_decomposition(lm, decomposition)
    status("measuring the original model")
    facts = _facts_items(data, s)
    base = _heldout_eval(lm, tokenizer, data, facts)
    result = CompareResult(base=base, oracle=None)
    if oracle is not None:
        status("measuring the oracle")
        o = _heldout_eval(*oracle, data, facts)
        result.oracle = {**o, "damage": _damage(o["retain_nll"], base["retain_nll"])}
    attack = sample_texts(data.attack or data.forget, s.relearn.docs, s.seed + 7)
    attack_measured = data.attack_heldout or data.heldout_forget
    result.attack_documents = len(attack)

    def relearn(label: str, model, tok) -> None:
        if s.relearn.steps == 0:
            return
        status(f"relearning attack on {label}")
        r = s.relearn
        result.relearn[label] = relearn_curve(
            model, tok, attack, attack_measured, steps=r.steps, lr=r.lr, batch_size=r.batch_size, eval_every=r.eval_every, seed=s.seed
        )

    relearn("original", lm, tokenizer)
    if oracle is not None:
        relearn("oracle", *oracle)
    advance()
    inputs = ForgetInputs(lm, tokenizer, data.forget, data.retain, dec)
    measured: dict[str, list[tuple[Point, Any]]] = {}  # method → its (point, edit) pairs

    for m in methods:
        strengths = sorted(set(s.sweep[m.name]))
        result.strength_fields[m.name] = m.strength
        cfg = _method_settings(m.name, strengths[-1], s)
        status(f"{m.name}: running")
        start = time.perf_counter()
        try:
            edits = m.run(inputs, cfg, strengths, Progress(status=status))
        except EditorError as e:
            edits = {}
            result.failures += [{"method": m.name, "strength": x, "error": str(e)} for x in strengths]
        result.method_seconds[m.name] = round(time.perf_counter() - start, 2)
        mine = measured.setdefault(m.name, [])
        for strength in strengths:
            if strength not in edits:
                if not any(f["method"] == m.name for f in result.failures):
                    result.failures.append(
                        {"method": m.name, "strength": strength, "error": "no edit at this strength (diverged, or nothing within the budget)"}
                    )
                continue
            edit = edits[strength]
            status(f"{m.name}: measuring {m.strength}={strength:g}")
            try:
                applied = edit.apply(lm)
            except EditorError as e:
                result.failures.append({"method": m.name, "strength": strength, "error": str(e)})
                continue
            try:
                h = _heldout_eval(lm, tokenizer, data, facts)
            finally:
                applied.revert()
            scored = _scored(h, result)
            point = Point(m.name, strength, h["forget_nll"], h["retain_nll"], scored.damage, edit.seconds, edit.summary)
            point.gap_closed, point.retain_vs_oracle = scored.gap_closed, scored.retain_vs_oracle
            point.facts_accuracy = h.get("facts_accuracy")
            result.points.append(point)
            mine.append((point, edit))
        if mine:
            within = [pe for pe in mine if pe[0].damage <= s.max_damage]
            best = max(within, key=lambda pe: pe[0].forget_nll) if within else min(mine, key=lambda pe: pe[0].damage)
            best[0].best = True
            result.summary[m.name] = reading([_scored(_as_eval(p), result) for p, _ in mine])
            if facts:
                result.facts_summary[m.name] = facts_reading([p.facts_accuracy for p, _ in mine if p.facts_accuracy], base["facts_accuracy"])
        advance()

    # Robustness at matched forgetting: each method's least damaging point that closes the common level.
    scored_by_method = {name: [_scored(_as_eval(p), result) for p, _ in pairs] for name, pairs in measured.items() if pairs}
    level = matched_level(scored_by_method) if result.oracle is not None else None
    result.matched_level = level
    for name, pairs in measured.items():
        if not pairs:
            continue
        if level is not None:
            picked = at_level(scored_by_method[name], level)
            point, edit = next(pe for pe, sc in zip(pairs, scored_by_method[name]) if sc is picked)
        else:  # no oracle, no gap: fall back on each method's best point
            point, edit = next(pe for pe in pairs if pe[0].best)
        point.relearned = True
        applied = edit.apply(lm)
        try:
            relearn(name, lm, tokenizer)
        finally:
            applied.revert()
    if fingerprint(list(targets.values())) != fingerprint_before:  # every point was reverted: a bug otherwise
        raise RuntimeError("editor compare left the model edited")
    return result


# ---------------------------------------------------------------------------------------------------
# reporting


def result_json(result: CompareResult, settings: CompareSettings, data: CompareData, model: str, oracle: str | None, seconds: float) -> dict:
    from lmkit.files import versions

    return {
        "format": "editor-compare/1",
        "model": model,
        "oracle": oracle,
        "data": data.sources,
        "settings": settings.model_dump(mode="json"),
        "original": result.base,
        "oracle_metrics": result.oracle,
        "strength_fields": result.strength_fields,
        "points": [p.to_dict() for p in result.points],
        "failures": result.failures,
        "method_seconds": result.method_seconds,
        "summary": result.summary,
        "facts_summary": result.facts_summary,
        "matched_level": result.matched_level,
        "relearn_attack_documents": result.attack_documents,
        "relearn": result.relearn,
        "seconds": round(seconds, 2),
        "versions": versions(),
    }


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:+.1f}%"


def markdown(report: dict) -> str:
    base, oracle = report["original"], report["oracle_metrics"]
    retain_names = list(base["retain_nll"])
    has_facts = "facts_accuracy" in base
    facts_head = ["forget people acc", "retained people acc"] if has_facts else []
    head = [
        "method",
        "strength",
        "held-out forget NLL",
        "gap closed",
        *[f"{n} NLL" for n in retain_names],
        "retain damage",
        *facts_head,
        "seconds",
        "changed",
        "best",
    ]
    lines = [
        f"# editor compare: {report['model']}",
        "",
        f"Forget: {report['data']['forget']['documents']} documents ({report['data']['forget']['source']}); "
        f"retain: {report['data']['retain']['documents']} documents ({report['data']['retain']['source']}). "
        f"Measured on held-out data: forget {report['data']['heldout_forget']['documents']} documents, "
        + ", ".join(f"{k} {v['documents']}" for k, v in report["data"]["heldout_retain"].items())
        + ". NLL is nats per token; retain damage is the mean relative NLL change over the held-out retain sets; "
        f"best = most forgetting with damage ≤ {100 * report['settings']['max_damage']:.0f}%.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]

    def row(label, strength, forget, gap, retain, damage, seconds, changed, best, acc=None):
        facts_cells = [f"{100 * acc[k]:.1f}%" if acc else "–" for k in ("forget", "retain")] if has_facts else []
        cells = [
            label,
            strength,
            f"{forget:.3f}",
            _pct(gap) if gap is not None else "–",
            *[f"{retain[n]:.3f}" for n in retain_names],
            _pct(damage),
            *facts_cells,
            seconds,
            changed,
            best,
        ]
        lines.append("| " + " | ".join(cells) + " |")

    row("original", "–", base["forget_nll"], None, base["retain_nll"], 0.0, "–", "–", "", base.get("facts_accuracy"))
    if oracle:
        row(f"oracle ({report['oracle']})", "–", oracle["forget_nll"], 1.0, oracle["retain_nll"], oracle["damage"], "–", "–", "", oracle.get("facts_accuracy"))
    for p in report["points"]:
        field_name = report["strength_fields"][p["method"]]
        row(
            p["method"],
            f"{field_name}={p['strength']:g}",
            p["forget_nll"],
            p["gap_closed"],
            p["retain_nll"],
            p["damage"],
            f"{p['seconds']:.1f}",
            p["size"],
            "✓" if p["best"] else "",
            p.get("facts_accuracy"),
        )
    if report.get("summary") and report["oracle_metrics"]:
        od = report["oracle_metrics"]["damage"]
        head = [*[f"at {100 * d:g}% damage" for d in LEVELS], f"at the oracle's damage ({_pct(od)})", "retrain-equivalence"]
        lines += [
            "",
            "Gap closed, read off each method's measured points: the most gap closed by a point whose mean retain damage is "
            "at most the level; retrain-equivalence: the most gap closed with every retain NLL at or below the oracle's.",
            "",
            "| method | " + " | ".join(head) + " |",
            "|---|" + "---:|" * len(head),
        ]
        for name, readout in report["summary"].items():
            lines.append(f"| {name} | " + " | ".join("–" if v is None else f"{100 * v:.1f}%" for v in readout.values()) + " |")
    if report.get("facts_summary"):
        levels = list(next(iter(report["facts_summary"].values())))
        o_acc = (oracle or {}).get("facts_accuracy")
        target = f" (the oracle's: {100 * (base['facts_accuracy']['forget'] - o_acc['forget']):.1f} points)" if o_acc else ""
        lines += [
            "",
            f"Facts: the largest drop of the forget people's attribute accuracy (held-out paraphrases) among each method's points "
            f"whose retained people's accuracy dropped by at most the level{target}.",
            "",
            "| method | " + " | ".join(levels) + " |",
            "|---|" + "---:|" * len(levels),
        ]
        for name, readout in report["facts_summary"].items():
            lines.append(f"| {name} | " + " | ".join("–" if v is None else f"{100 * v:.1f} pt" for v in readout.values()) + " |")
    if report["failures"]:
        lines += ["", "Points that failed:", ""]
        lines += [f"- {f['method']} at {f['strength']:g}: {f['error']}" for f in report["failures"]]
    lines += ["", "Wall time per method (whole sweep, without the held-out measurements):", ""]
    lines += ["| method | seconds |", "|---|---|"] + [f"| {m} | {t:.1f} |" for m, t in report["method_seconds"].items()]
    if report["relearn"]:
        steps = [p["step"] for p in next(iter(report["relearn"].values()))]
        level = report.get("matched_level")
        at = (
            f"each method's least damaging point closing at least {100 * level:.0f}% of the gap (the level every method reaches)"
            if level is not None
            else "best point of each method"
        )
        lines += [
            "",
            "Relearning: held-out forget NLL while fine-tuning on "
            f"{report.get('relearn_attack_documents', report['settings']['relearn']['docs'])} forget documents (lr {report['settings']['relearn']['lr']:g}, "
            f"batch {report['settings']['relearn']['batch_size']}), at {at}:",
            "",
        ]
        picked = {p["method"]: p for p in report["points"] if p.get("relearned")}
        lines += ["| model | point | " + " | ".join(f"step {s}" for s in steps) + " |", "|---|---|" + "---|" * len(steps)]
        for label, curve in report["relearn"].items():
            p = picked.get(label)
            where = f"{report['strength_fields'][label]}={p['strength']:g} ({_pct(p['gap_closed'])} of the gap)" if p else "–"
            lines.append(f"| {label} | {where} | " + " | ".join(f"{q['nll']:.3f}" for q in curve) + " |")
    lines += ["", f"Total: {report['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def write_report(out: Path, report: dict, force: bool) -> Path:
    """compare.json, compare.md, pareto.png, relearn.png (facts targets: facts.png), written atomically
    (lmkit.files.atomic_dir)."""
    import json

    from evals.plots import save_plot
    from lmkit.files import atomic_dir

    with atomic_dir(Path(out), "compare", force=force) as tmp:
        (tmp / "compare.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        (tmp / "compare.md").write_text(markdown(report), encoding="utf-8")
        series: dict[str, list[tuple[float, float]]] = {}
        for p in report["points"]:
            series.setdefault(p["method"], []).append((100 * p["damage"], p["forget_nll"]))
        series["original"] = [(0.0, report["original"]["forget_nll"])]
        if report["oracle_metrics"]:
            o = report["oracle_metrics"]
            series[f"oracle ({report['oracle']})"] = [(100 * o["damage"], o["forget_nll"])]
        save_plot(
            tmp / "pareto.png",
            series=series,
            xlabel="retain damage: mean held-out retain NLL change (%)",
            ylabel="held-out forget NLL (nats/token)",
            title=f"forgetting vs damage on {Path(report['model']).name}",
        )
        if report.get("facts_summary"):
            _facts_plot(tmp / "facts.png", report)
        curves = {label: [(p["step"], p["nll"]) for p in curve] for label, curve in report["relearn"].items()}
        save_plot(
            tmp / "relearn.png",
            series=curves,
            xlabel="relearning steps on forget documents",
            ylabel="held-out forget NLL (nats/token)",
            title="relearning attack (best point of each method)",
        )
    return Path(out)


def _facts_plot(path: Path, report: dict) -> None:
    """The facts frontier: each point's drop in the forget people's attribute accuracy against the drop in the
    retained people's, in points from the original model; the oracle marks where a perfect edit would land."""
    from evals.plots import save_plot

    base = report["original"]["facts_accuracy"]

    def drops(acc: dict[str, float]) -> tuple[float, float]:
        return 100 * (base["retain"] - acc["retain"]), 100 * (base["forget"] - acc["forget"])

    series: dict[str, list[tuple[float, float]]] = {}
    for p in report["points"]:
        if p.get("facts_accuracy"):
            series.setdefault(p["method"], []).append(drops(p["facts_accuracy"]))
    series["original"] = [(0.0, 0.0)]
    if (report.get("oracle_metrics") or {}).get("facts_accuracy"):
        series[f"oracle ({report['oracle']})"] = [drops(report["oracle_metrics"]["facts_accuracy"])]
    save_plot(
        path,
        series=series,
        xlabel="retained people: attribute accuracy drop (points)",
        ylabel="forget people: attribute accuracy drop (points)",
        title=f"facts frontier on {Path(report['model']).name} (held-out paraphrases)",
    )
