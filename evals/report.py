"""An evaluation report as JSON, a markdown page and PNG plots, written atomically side by side.

`write_report(out, report)` writes `out` (JSON), `out` with suffix `.md`, and `<stem>-relearn.png` /
`<stem>-quantization.png` when the report has robustness results. Each file is written to a temporary
sibling and renamed into place whole; the JSON, which names the others, comes last.
"""

from __future__ import annotations

import json
from pathlib import Path

from lmkit.files import atomic_file

PPL_METRICS = ("word_perplexity", "byte_perplexity", "bits_per_byte")


def _fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:
            return "nan"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.2f}"
        return f"{v:.4f}"
    return str(v)


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return out


def capability_rows(cap: dict) -> list[list]:
    """(task, documents, metric, value) rows, perplexity metrics first."""
    rows = []
    for task, metrics in {**cap.get("tasks", {}), **cap.get("groups", {})}.items():
        n = metrics.get("sample_len", cap.get("n_samples", {}).get(task, {}).get("effective", ""))
        keys = [k for k in PPL_METRICS if k in metrics] + sorted(k for k in metrics if k not in PPL_METRICS and k != "sample_len" and not k.endswith("_stderr"))
        for k in keys:
            rows.append([task, n, k, metrics[k]])
    return rows


def render_markdown(report: dict, plots: dict[str, str] | None = None) -> str:
    plots = plots or {}
    m = report.get("model", {})
    lines = [f"# editor eval: {m.get('name', '?')}", ""]
    lines += [f"- model: `{m.get('path', m.get('name', '?'))}`" + (f" + adapter `{m['adapter']}`" if m.get("adapter") else "")]
    for key, src in report.get("data", {}).items():
        lines.append(f"- {key}: `{src}`")
    if "capability" in report:
        cap = report["capability"]
        lim = cap.get("limit")
        lines.append(f"- lm-eval {cap.get('lm_eval_version')} on the in-memory model, limit {lim or 'none'} documents per task")
    lines.append(f"- total {report.get('seconds', 0):.1f}s")
    if "capability" in report:
        lines += ["", "## Capability (lm-evaluation-harness)", ""]
        lines += _table(["task", "docs", "metric", "value"], capability_rows(report["capability"]))
        if "editor_toxic_choice" in report["capability"].get("tasks", {}):
            lines += [
                "",
                "`editor_toxic_choice`: acc = fraction of toxic/benign pairs where the model prefers the toxic continuation (acc_norm: per byte); lower is better after forgetting.",
            ]
    if "nll" in report:
        lines += ["", "## Mean NLL per token (nats)", ""]
        lines += _table(
            ["set", "docs", "tokens", "NLL", "perplexity"], [[k, v["documents"], v["tokens"], v["nll"], v["perplexity"]] for k, v in report["nll"].items()]
        )
    if "facts" in report:
        lines += _facts_section(report["facts"])
    if "toxicity" in report:
        t = report["toxicity"]
        p = t["protocol"]
        lines += ["", "## Toxicity of generations (RealToxicityPrompts protocol)", ""]
        lines += [
            f"scorer **{t['scorer']}**; {t['prompts']} prompts x k={p['k']} samples, top-p {p['top_p']}, {p['max_new_tokens']} new tokens; continuations scored alone; toxic = score >= {p['threshold']}",
            "",
        ]
        rows = [["all", t["prompts"], t["expected_max_toxicity"], t["toxicity_probability"], t["mean_toxicity"], t["toxic_fraction"]]]
        for label, s in t.get("by_prompt_label", {}).items():
            rows.append([f"{label} prompts", s["prompts"], s["expected_max_toxicity"], s["toxicity_probability"], s["mean_toxicity"], s["toxic_fraction"]])
        lines += _table(["prompts", "n", "expected max toxicity", "toxicity probability", "mean toxicity", "toxic fraction"], rows)
    if "robustness" in report:
        r = report["robustness"]["relearn"]
        lines += [
            "",
            "## Robustness",
            "",
            f"### Relearning attack: fine-tune on {r['attack_documents']} forget documents, lr {r['lr']}, batch {r['batch_size']}",
            "",
        ]
        lines.append(
            f"Forget NLL measured on {r['measured_documents']} other forget documents; the oracle ({r.get('oracle') or 'none'}) never learned the forget set."
        )
        lines.append("")
        names = list(r["curves"])
        steps = [pt["step"] for pt in r["curves"][names[0]]]
        header = ["step"] + [f"{n} forget NLL" for n in names] + [f"{n} retain NLL" for n in names if "retain_nll" in r["curves"][n][0]]
        rows = []
        for i, s in enumerate(steps):
            row = [s] + [r["curves"][n][i]["nll"] for n in names] + [r["curves"][n][i]["retain_nll"] for n in names if "retain_nll" in r["curves"][n][0]]
            rows.append(row)
        lines += _table(header, rows)
        lines += [
            "",
            "Recovery (forget NLL at step 0 minus its lowest value during the attack, nats/token): "
            + ", ".join(f"{n} {r[f'{n}_recovery']:+.4f}" for n in names),
        ]
        if "relearn" in plots:
            lines += ["", f"![relearning]({plots['relearn']})"]
        q = report["robustness"]["quantization"]
        lines += ["", f"### Quantization ({q['scheme']})", ""]
        base = q["rows"][0]
        lines += _table(
            ["bits", "forget NLL", "retain NLL", "Δ forget", "Δ retain"],
            [[x["bits"], x["forget_nll"], x["retain_nll"], x["forget_nll"] - base["forget_nll"], x["retain_nll"] - base["retain_nll"]] for x in q["rows"]],
        )
        if "quantization" in plots:
            lines += ["", f"![quantization]({plots['quantization']})"]
    return "\n".join(lines) + "\n"


def _facts_section(f: dict) -> list[str]:
    lines = ["", f"## Facts: attribute accuracy on held-out paraphrases (`{f['folder']}`)", ""]
    attributes = sorted({a for s in f["splits"].values() for a in s["accuracy_by_attribute"]})
    rows = [[k, s["items"], s["accuracy"], s["truth_ratio_median"], *(s["accuracy_by_attribute"].get(a) for a in attributes)] for k, s in f["splits"].items()]
    lines += _table(["people", "prompts", "accuracy", "median truth ratio", *attributes], rows)
    lines += ["", "Accuracy: the true value ranked first among its pool; `unseen` people were never trained on (the chance level)."]
    if "forget_quality" in f:
        lines.append(f"Forget quality (TOFU: KS-test p-value of the truth ratios against the oracle {f['oracle']}): {f['forget_quality']:.3g}")
    return lines


def _plots(report: dict, stem: Path) -> dict[str, Path]:
    from evals.plots import save_plot

    out: dict[str, Path] = {}
    if "robustness" not in report:
        return out
    r = report["robustness"]["relearn"]
    series = {f"{name} forget NLL": [(p["step"], p["nll"]) for p in curve] for name, curve in r["curves"].items()}
    label = report.get("model", {}).get("name", "model")
    oracle = r.get("oracle")
    series = {k.replace("model ", f"{label} ", 1).replace("oracle ", f"oracle {oracle} " if oracle else "oracle ", 1): v for k, v in series.items()}
    out["relearn"] = save_plot(
        stem.with_name(f"{stem.name}-relearn.png"),
        series=series,
        xlabel="fine-tuning steps on forget documents",
        ylabel="forget NLL (nats/token)",
        title="Relearning attack",
    )
    rows = report["robustness"]["quantization"]["rows"]
    out["quantization"] = save_plot(
        stem.with_name(f"{stem.name}-quantization.png"),
        series={"forget NLL": [(x["bits"], x["forget_nll"]) for x in rows], "retain NLL": [(x["bits"], x["retain_nll"]) for x in rows]},
        xlabel="weight bits (32 = unquantized)",
        ylabel="NLL (nats/token)",
        title="NLL after round-to-nearest quantization",
    )
    return out


def _markdown_path(out: Path) -> Path:
    return out.with_suffix(".md") if out.suffix.lower() != ".md" else out.with_name(out.name + ".md")


def report_files(out: str | Path) -> list[Path]:
    """Every file `write_report(out, ...)` may write: the JSON, the markdown and the plots."""
    out = Path(out)
    stem = out.with_suffix("")
    return [out, _markdown_path(out), *(stem.with_name(f"{stem.name}-{kind}.png") for kind in ("relearn", "quantization"))]


def is_report(path: str | Path) -> bool:
    """Whether `path` holds a report `editor eval` wrote (a JSON object naming editor's version): safe to replace."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "editor_version" in data


def write_report(out: str | Path, report: dict) -> dict[str, Path]:
    """Write JSON + markdown (+ PNGs); returns {"json", "markdown", "relearn"?, "quantization"?} paths."""
    out = Path(out)
    stem = out.with_suffix("")
    md_path = _markdown_path(out)
    # The plots and the markdown first, the JSON (the report itself) last: a crash never leaves a report
    # that names plots which are not there, and each file is whole or absent (lmkit.files.atomic_file).
    final_plots = _plots(report, stem)
    with atomic_file(md_path) as tmp:
        tmp.write_text(render_markdown(report, {k: p.name for k, p in final_plots.items()}), encoding="utf-8")
    with atomic_file(out) as tmp:
        tmp.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    return {"json": out, "markdown": md_path, **final_plots}
