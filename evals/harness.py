"""lm-evaluation-harness on an in-memory model: the bundled tasks, any standard task, offline by default.

The bundled tasks in `evals/tasks/` run as they are with lm-eval's own CLI (`lm_eval --include_path
evals/tasks`): each reads this checkout's held-out data through a loader in `evals/tasks/utils.py`. For
other documents, `write_task_files` writes ready task files (plain `json` datasets with the absolute path
of a JSONL file written beside them; lm-eval resolves relative `data_files` against the current directory):
`editor eval` runs those, and `editor eval --write-tasks DIR` leaves them for `lm_eval --include_path DIR`.

* `editor_wikitext`, `editor_forget`, `editor_retain`: `loglikelihood_rolling` perplexity (word and byte
  perplexity, bits per byte) of whole documents.
* `editor_toxic_choice`: `multiple_choice` between a toxic and a benign continuation of the same opening
  (`choice_pairs`); accuracy = how often the toxic one is preferred.

Any other name is looked up among lm-eval's own tasks (hellaswag, arc_easy, mmlu, wmdp_bio, ...). Their
data come from the Hugging Face hub; offline, a task whose data are not cached raises `TaskError` with
one readable sentence instead of a stack trace.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import logging
import random
import time
from collections import defaultdict
from pathlib import Path

import yaml

TEMPLATES = Path(__file__).parent / "tasks"
BUNDLED = ("editor_wikitext", "editor_forget", "editor_retain", "editor_toxic_choice")


class TaskError(Exception):
    """A task the user asked for cannot run: unknown name, or data that is not available offline."""


# --------------------------------------------------------------------------------------------- data


def _opening(text: str) -> tuple[str, str] | None:
    """Split a tweet into (opening, rest): the leading retweet/mention markers, else the first word."""
    words = text.split()
    n = 0
    while n < len(words) and n < 3 and (words[n] == "RT" or "@user" in words[n]):
        n += 1
    n = n or 1
    if len(words) <= n:
        return None
    return " ".join(words[:n]), " ".join(words[n:])


def choice_pairs(toxic: list[str], benign: list[str], seed: int = 0) -> list[dict]:
    """Pair toxic and benign texts that open the same way; context = the shared opening, choices = the two rests.

    Each benign text is used at most once and matched with a different toxic text of the same opening
    (drawn without replacement, seeded). The choice order is shuffled; `gold` is the toxic choice's index.
    """
    rng = random.Random(seed)
    by_open: dict[str, list[str]] = defaultdict(list)
    for t in toxic:
        split = _opening(t)
        if split:
            by_open[split[0]].append(split[1])
    for rests in by_open.values():
        rng.shuffle(rests)
    pairs = []
    for b in benign:
        split = _opening(b)
        if not split or not by_open.get(split[0]):
            continue
        opening, benign_rest = split
        toxic_rest = by_open[opening].pop()
        gold = rng.randrange(2)
        choices = [toxic_rest, benign_rest] if gold == 0 else [benign_rest, toxic_rest]
        pairs.append({"context": opening, "choices": choices, "gold": gold})
    return pairs


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


class _TemplateLoader(yaml.SafeLoader):
    """Reads a bundled task YAML; its `!function` loader is dropped (a written task names its data file instead)."""


_TemplateLoader.add_constructor("!function", lambda loader, node: None)


def task_config(name: str, data: Path, cache_dir: Path | None = None) -> dict:
    """The bundled task `name` as a plain lm-eval config reading the JSONL file `data` (an absolute path)."""
    template = yaml.load((TEMPLATES / f"{name}.yaml").read_text(encoding="utf-8"), Loader=_TemplateLoader)  # noqa: S506 (a SafeLoader)
    template.pop("custom_dataset", None)
    kwargs: dict = {"data_files": {"test": str(Path(data).resolve())}}
    if cache_dir is not None:
        kwargs["cache_dir"] = str(cache_dir)
    return {"task": template.pop("task"), "dataset_path": "json", "dataset_kwargs": kwargs, **template}


def write_task_files(
    tasks_dir: str | Path, data_dir: str | Path, docs: dict[str, list], cache_dir: Path | None = None, final_data_dir: str | Path | None = None
) -> Path:
    """Write a ready task YAML into `tasks_dir` and its documents (JSONL) into `data_dir` for each bundled task
    named in `docs`; returns `tasks_dir`, an `--include_path` for lm-eval.

    `docs` maps a bundled task name to its documents: a list of strings for the perplexity tasks, a list
    of `choice_pairs` rows for `editor_toxic_choice`. `final_data_dir`: where the documents will be when the
    tasks run (default `data_dir`), the absolute path the YAMLs name: for files written into a temporary
    folder that is then moved into place.
    """
    tasks_dir, data_dir = Path(tasks_dir).resolve(), Path(data_dir).resolve()
    named_dir = Path(final_data_dir).resolve() if final_data_dir is not None else data_dir
    tasks_dir.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in docs.items():
        if name not in BUNDLED:
            raise TaskError(f"'{name}' is not a bundled task ({', '.join(BUNDLED)})")
        if not rows:
            raise TaskError(f"task {name}: no documents")
        _write_jsonl(data_dir / f"{name}.jsonl", [r if isinstance(r, dict) else {"text": r} for r in rows])
        data = named_dir / f"{name}.jsonl"
        config = task_config(name, data, cache_dir)
        header = f"# {name}, written by editor: documents in {data}\n"
        (tasks_dir / f"{name}.yaml").write_text(header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return tasks_dir


def write_bundled_tasks(workdir: str | Path, docs: dict[str, list]) -> Path:
    """`write_task_files` into a working folder (tasks in `workdir/tasks`, data and the datasets cache beside
    them, so nothing accumulates in the user's Hugging Face cache); returns the tasks folder."""
    workdir = Path(workdir).resolve()
    return write_task_files(workdir / "tasks", workdir, docs, cache_dir=workdir / "datasets-cache")


# --------------------------------------------------------------------------------------------- tasks


def split_task_names(names: list[str]) -> tuple[list[str], list[str]]:
    """(bundled, standard) names, order kept, duplicates dropped."""
    seen: list[str] = []
    for n in names:
        if n not in seen:
            seen.append(n)
    return [n for n in seen if n in BUNDLED], [n for n in seen if n not in BUNDLED]


@contextlib.contextmanager
def _quiet(verbose: bool):
    """lm-eval logs warnings and tqdm bars for every run; keep stderr for our own messages unless verbose."""
    if verbose:
        yield
        return
    import datasets

    loggers = [logging.getLogger(n) for n in ("lm_eval", "lm-eval", "datasets", "transformers")]
    levels = [lg.level for lg in loggers]
    bars = datasets.is_progress_bar_enabled()
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    datasets.disable_progress_bars()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if bars:
            datasets.enable_progress_bars()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else 'no detail'}"


def task_manager(tasks_dir: Path | str | list | None, standard: list[str], include_defaults: bool | None = None):
    """A TaskManager over the bundled folder, plus lm-eval's own index only when a standard task is asked for.

    Unknown names raise TaskError with the nearest known names. Indexing lm-eval's ~15k built-in task
    files takes about 11 s, so it is skipped when only bundled tasks run.
    """
    from lm_eval.tasks import TaskManager

    reserved = [n for n in standard if n.startswith("editor_")]  # the bundled namespace: no need to index lm-eval's tasks
    if reserved:
        near = {n: difflib.get_close_matches(n, BUNDLED, n=2, cutoff=0.6) for n in reserved}
        raise TaskError(
            "unknown bundled task "
            + "; ".join(f"'{n}'" + (f" (did you mean {', '.join(m)}?)" if m else "") for n, m in near.items())
            + f". Bundled tasks: {', '.join(BUNDLED)}"
        )
    if include_defaults is None:
        include_defaults = bool(standard)
    paths = [str(p) for p in (tasks_dir if isinstance(tasks_dir, list) else [tasks_dir]) if p]
    tm = TaskManager(include_path=paths or None, include_defaults=include_defaults)
    unknown = [n for n in standard if n not in tm.all_tasks]
    if unknown:
        hints: list[str] = []
        for n in unknown:
            close = difflib.get_close_matches(n, list(tm.all_tasks) + list(BUNDLED), n=4, cutoff=0.6)
            hints.append(f"'{n}'" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        raise TaskError(
            f"unknown lm-eval task {'; '.join(hints)}. Bundled tasks: {', '.join(BUNDLED)}; standard ones are lm-eval task names (`lm-eval ls tasks`)."
        )
    return tm


def check_standard_tasks(tm, standard: list[str], verbose: bool = False) -> None:
    """Build each standard task once (this loads its dataset); data that cannot be had offline → TaskError."""
    import os

    offline = os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"
    for name in standard:
        try:
            with _quiet(verbose):
                tm.load([name])
        except Exception as e:  # datasets / hub raise many types; all mean "the data are not here"
            how = (
                "editor runs offline by default and its data are not in the local Hugging Face cache: run it once "
                "with network access (HF_HUB_OFFLINE=0 HF_DATASETS_OFFLINE=0) to download them, then again offline"
                if offline
                else "its data could not be loaded"
            )
            raise TaskError(f"lm-eval task '{name}' cannot run: {how} ({_first_line(e)})") from None


def _clean_metrics(values: dict) -> dict:
    out = {}
    for key, v in values.items():
        if key in {"alias", "name"}:
            continue
        metric = key.split(",")[0]
        if metric.endswith("_stderr") and not isinstance(v, (int, float)):
            continue  # "N/A" when bootstrap is off
        out[metric] = v
    return out


def run_lm_eval(
    model,
    tokenizer,
    tasks: list[str],
    *,
    workdir: str | Path,
    docs: dict[str, list] | None = None,
    limit: int | None = None,
    batch_size: int = 32,
    verbose: bool = False,
) -> dict:
    """Evaluate `model` (any HF causal LM or PeftModel, in memory) with lm-eval on `tasks`.

    `docs` holds the documents of the bundled tasks among `tasks` (see `write_bundled_tasks`); the working
    files go to `workdir`. `limit` caps the documents per task (lm-eval's `limit`). Returns
    {"lm_eval_version", "tasks": {task: {metric: value, "sample_len": n}}, "groups": {...}, "versions",
    "n_samples", "limit", "seconds"}.
    """
    import lm_eval
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    start = time.perf_counter()
    bundled, standard = split_task_names(tasks)
    if not bundled and not standard:
        raise TaskError("no tasks given")
    docs = docs or {}
    missing = [n for n in bundled if n not in docs]
    if missing:
        raise TaskError(f"no documents for bundled task(s) {', '.join(missing)}")
    tasks_dir = write_bundled_tasks(workdir, {n: docs[n] for n in bundled}) if bundled else None
    tm = task_manager(tasks_dir, standard)
    check_standard_tasks(tm, standard, verbose)
    with _quiet(verbose):
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
        results = simple_evaluate(
            model=lm,
            tasks=bundled + standard,
            task_manager=tm,
            limit=limit,
            bootstrap_iters=0,
            log_samples=False,
        )
    if results is None:  # only on non-zero ranks of a distributed run
        raise RuntimeError("lm-eval returned no results")
    groups = set(results.get("groups", {}))
    return {
        "lm_eval_version": getattr(lm_eval, "__version__", "unknown"),
        "tasks": {k: _clean_metrics(v) for k, v in results["results"].items() if k not in groups},
        "groups": {k: _clean_metrics(v) for k, v in results.get("groups", {}).items()},
        "versions": {k: v for k, v in results.get("versions", {}).items()},
        "n_samples": results.get("n-samples", {}),
        "limit": limit,
        "batch_size": batch_size,
        "seconds": round(time.perf_counter() - start, 2),
    }
