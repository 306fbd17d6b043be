"""Knowledge of facts about people, for any causal LM: attribute accuracy, TOFU's truth ratio and forget quality.

A cloze item is a prompt ("Jelia Briatrai was born in"), its true value and the value's pool (every
candidate, the true one included). Each candidate is scored by the total log-probability of its tokens
(" " + value, tokenized alone) after the prompt's tokens (BOS first, when the tokenizer adds one), as
lm-eval scores a multiple-choice continuation.

- Attribute accuracy: the fraction of items whose true value has a strictly higher total log-prob than
  every other candidate (a tie counts as a miss).
- Truth ratio (TOFU, Maini et al. 2024, arXiv:2401.06121): with P̄(v) = P(v | prompt)^(1/|v|) the
  length-normalised probability, R = geometric mean of P̄ over the wrong values / P̄(true value). Below 1
  the model prefers the truth; TOFU's wrong values are five perturbed answers, here every other pool value.
- Forget quality (TOFU): the two-sided two-sample Kolmogorov–Smirnov p-value between the truth ratios
  of the edited model and of the oracle (trained without the forget people) on the forget people's items.
  High p: the two distributions cannot be told apart.

`ClozeFolder` (and `read_cloze`) reads the folder that `editor target facts` writes (cloze.jsonl, pools.json,
splits.json).
"""

from __future__ import annotations

import inspect
import json
import math
import random
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
from torch import Tensor

from lmkit.nll import evaluating
from lmkit.texts import jsonl_objects
from lmkit.tokens import context_length, length_sorted_batches, pad_id

FACT_SPLITS = ("forget10", "retain", "unseen")  # the default splits scored: forget first, unseen = chance level


@dataclass(frozen=True)
class ClozeItem:
    prompt: str
    answer: str
    candidates: tuple[str, ...]  # the attribute's pool, `answer` included
    person: int = -1
    attribute: str = ""


@dataclass(frozen=True)
class CandidateScores:
    """One item's candidates: summed log-prob and token count of each, and which one is true."""

    logprob: Tensor  # (n_candidates,) float64
    tokens: Tensor  # (n_candidates,) int64
    answer: int


@dataclass(frozen=True)
class KSResult:
    statistic: float
    pvalue: float


class ClozeFolder:
    """The folder `editor target facts` writes, read once: the cloze items of any split and phrasing."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        pools = {a: tuple(v) for a, v in json.loads((self.folder / "pools.json").read_text(encoding="utf-8")).items()}
        self._rows = [
            (row["phrasing"], ClozeItem(row["prompt"], row["answer"], pools[row["attribute"]], row["person"], row["attribute"]))
            for _, row in jsonl_objects(self.folder / "cloze.jsonl")
        ]

    @cached_property
    def splits(self) -> dict[str, list[int]]:
        """splits.json: each split's people (read only when a split is asked for)."""
        return json.loads((self.folder / "splits.json").read_text(encoding="utf-8"))

    def items(self, split: str | None = None, phrasing: str = "heldout") -> list[ClozeItem]:
        """The items in `phrasing` ("heldout" or "train"), of one split's people or of all."""
        people: set[int] | None = None
        if split is not None:
            if split not in self.splits:
                raise ValueError(f"no split {split!r} in {self.folder}/splits.json; known: {', '.join(self.splits)}")
            people = set(self.splits[split])
        return [item for p, item in self._rows if p == phrasing and (people is None or item.person in people)]


def read_cloze(folder: Path | str, split: str | None = None, phrasing: str = "heldout") -> list[ClozeItem]:
    """The cloze items of `folder` in `phrasing` ("heldout" or "train"), of one split's people or of all; to read
    several splits, read the folder once (`ClozeFolder`)."""
    return ClozeFolder(folder).items(split, phrasing)


def _pairs(tokenizer, items: list[ClozeItem]) -> list[tuple[int, int, list[int], int]]:
    """(item index, candidate index, prompt + candidate token ids, prompt length) for every candidate."""
    cont: dict[str, list[int]] = {}
    out = []
    for i, item in enumerate(items):
        if item.answer not in item.candidates:
            raise ValueError(f"the answer {item.answer!r} is not among the candidates of {item.prompt!r}")
        prompt = tokenizer(item.prompt, add_special_tokens=True)["input_ids"]
        for c, value in enumerate(item.candidates):
            if value not in cont:
                cont[value] = tokenizer(" " + value, add_special_tokens=False)["input_ids"]
            out.append((i, c, prompt + cont[value], len(prompt)))
    return out


@torch.no_grad()
def score_candidates(model, tokenizer, items: list[ClozeItem], batch_size: int = 64) -> list[CandidateScores]:
    """The summed log-prob of every candidate continuation of every item (eval mode, no gradients)."""
    pairs = _pairs(tokenizer, items)
    limit = context_length(model)
    if pairs and max(len(ids) for _, _, ids, _ in pairs) > limit:
        raise ValueError(f"a prompt with a candidate is longer than the model's context ({limit} tokens)")
    logprob = [torch.zeros(len(item.candidates), dtype=torch.float64) for item in items]
    tokens = [torch.zeros(len(item.candidates), dtype=torch.long) for item in items]
    device = next(model.parameters()).device
    keep_arg = "logits_to_keep" in inspect.signature(model.forward).parameters
    with evaluating(model):
        for rows, ids, mask in length_sorted_batches([p[2] for p in pairs], pad_id(tokenizer), batch_size):
            chunk = [pairs[r] for r in rows]
            ids, mask = ids.to(device), mask.to(device)
            # The candidate's k-th token stands at prompt_len + k and is predicted at prompt_len + k − 1.
            n_cont = torch.tensor([len(p[2]) - p[3] for p in chunk], device=device)
            offsets = torch.arange(int(n_cont.max()), device=device)
            at = torch.tensor([p[3] - 1 for p in chunk], device=device)[:, None] + offsets  # (batch, k)
            at = at.clamp(max=ids.shape[1] - 2)  # past a short candidate's end: padding, masked below
            if keep_arg:  # only the candidate positions go through the unembedding
                logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=at).logits
            else:
                full = model(input_ids=ids, attention_mask=mask).logits
                logits = full.gather(1, at[..., None].expand(-1, -1, full.shape[-1]))
            logp = torch.log_softmax(logits.double(), -1).gather(-1, ids.gather(1, at + 1)[..., None])[..., 0]
            sums = (logp * (offsets < n_cont[:, None])).sum(1).cpu().tolist()
            for (i, c, _, _), total, n in zip(chunk, sums, n_cont.tolist()):
                logprob[i][c] = total
                tokens[i][c] = n
    return [CandidateScores(lp, n, item.candidates.index(item.answer)) for lp, n, item in zip(logprob, tokens, items)]


def ranked_first(s: CandidateScores) -> bool:
    others = torch.cat([s.logprob[: s.answer], s.logprob[s.answer + 1 :]])
    return bool((s.logprob[s.answer] > others).all())


def accuracy(scores: list[CandidateScores]) -> float:
    """The fraction of items whose true value is ranked first (NaN for no items)."""
    return sum(ranked_first(s) for s in scores) / len(scores) if scores else math.nan


def truth_ratio(s: CandidateScores) -> float:
    """Geometric mean of the wrong values' length-normalised probabilities over the true value's."""
    mean_nll = -s.logprob / s.tokens.double()  # −log P̄ per candidate
    wrong = torch.cat([mean_nll[: s.answer], mean_nll[s.answer + 1 :]])
    if not len(wrong):
        raise ValueError("a truth ratio needs at least one wrong candidate")
    return math.exp(float(mean_nll[s.answer] - wrong.mean()))


def truth_ratios(scores: list[CandidateScores]) -> list[float]:
    return [truth_ratio(s) for s in scores]


def _ks_statistic(a: list[float], b: list[float]) -> int:
    """max |n·m·(F_a − F_b)| over the pooled values, an integer (so the exact test compares exactly)."""
    n, m = len(a), len(b)
    xs, ys = sorted(a), sorted(b)
    i = j = best = 0
    for x in sorted(set(xs) | set(ys)):
        while i < n and xs[i] <= x:
            i += 1
        while j < m and ys[j] <= x:
            j += 1
        best = max(best, abs(i * m - j * n))
    return best


def _ks_exact_pvalue(n: int, m: int, d: int) -> float:
    """P(a uniformly random lattice path from (0,0) to (n,m) reaches |i·m − j·n| ≥ d), the exact null
    distribution of the two-sided statistic without ties."""
    inside = [[0.0] * (m + 1) for _ in range(n + 1)]
    inside[0][0] = 1.0
    for i in range(n + 1):
        for j in range(m + 1):
            if (i, j) == (0, 0):
                continue
            if abs(i * m - j * n) >= d:
                continue
            left = n + m - (i + j - 1)  # steps left before the last step
            p = 0.0
            if i:
                p += inside[i - 1][j] * (n - i + 1) / left
            if j:
                p += inside[i][j - 1] * (m - j + 1) / left
            inside[i][j] = p
    return min(1.0, max(0.0, 1.0 - inside[n][m]))


def _kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution (the large-sample limit)."""
    if x < 0.2:
        return 1.0
    return min(1.0, max(0.0, 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * x * x) for k in range(1, 101))))


def ks_2samp(a: list[float], b: list[float], exact_limit: int = 1_000_000) -> KSResult:
    """Two-sided two-sample Kolmogorov–Smirnov test: exact p-value when len(a)·len(b) ≤ exact_limit,
    else the Kolmogorov limit with Stephens' small-sample correction."""
    n, m = len(a), len(b)
    if not n or not m:
        raise ValueError("the KS test needs two non-empty samples")
    d = _ks_statistic(a, b)
    statistic = d / (n * m)
    if d == 0:
        return KSResult(0.0, 1.0)
    if n * m <= exact_limit:
        return KSResult(statistic, _ks_exact_pvalue(n, m, d))
    en = math.sqrt(n * m / (n + m))
    return KSResult(statistic, _kolmogorov_sf((en + 0.12 + 0.11 / en) * statistic))


def forget_quality(edited_ratios: list[float], oracle_ratios: list[float]) -> float:
    """TOFU's forget quality: the KS p-value between the edited model's and the oracle's truth ratios."""
    return ks_2samp(edited_ratios, oracle_ratios).pvalue


@dataclass(frozen=True)
class SplitResult:
    accuracy: float
    accuracy_by_attribute: dict[str, float]
    truth_ratios: list[float]
    items: int

    def summary(self) -> dict:
        ratios = sorted(self.truth_ratios)
        median = ratios[len(ratios) // 2] if ratios else math.nan
        return {"accuracy": self.accuracy, "accuracy_by_attribute": self.accuracy_by_attribute, "truth_ratio_median": median, "items": self.items}


def evaluate_items(model, tokenizer, items: list[ClozeItem], batch_size: int = 64) -> SplitResult:
    """Accuracy (overall and per attribute) and truth ratios of `items`."""
    scores = score_candidates(model, tokenizer, items, batch_size)
    by_attribute: dict[str, list[CandidateScores]] = {}
    for item, s in zip(items, scores):
        by_attribute.setdefault(item.attribute, []).append(s)
    return SplitResult(accuracy(scores), {a: accuracy(v) for a, v in sorted(by_attribute.items())}, truth_ratios(scores), len(items))


def sample_people(items: list[ClozeItem], people: int | None, seed: int = 0) -> list[ClozeItem]:
    """The items of at most `people` people, drawn with a seed (None or 0: every person)."""
    ids = sorted({i.person for i in items})
    if not people or people >= len(ids):
        return items
    chosen = set(random.Random(seed).sample(ids, people))
    return [i for i in items if i.person in chosen]


def facts_report(
    model,
    tokenizer,
    folder: Path | str,
    splits: tuple[str, ...] = FACT_SPLITS,
    phrasing: str = "heldout",
    people: int | None = None,
    seed: int = 0,
    oracle=None,
    batch_size: int = 64,
) -> dict:
    """Accuracy and truth ratios per split (at most `people` people each); with `oracle` = (model, tokenizer), a
    model never trained on the first split's people, forget quality on that split against the oracle's truth
    ratios on the same items (the model itself as its oracle: scored once, p = 1)."""
    cloze = ClozeFolder(folder)
    items = {s: sample_people(cloze.items(s, phrasing), people, seed) for s in splits}
    results = {s: evaluate_items(model, tokenizer, v, batch_size) for s, v in items.items()}
    report: dict = {
        "phrasing": phrasing,
        "splits": {s: r.summary() for s, r in results.items()},
        "truth_ratios": {s: r.truth_ratios for s, r in results.items()},
    }
    if oracle is not None:
        ours = results[splits[0]].truth_ratios
        theirs = ours if oracle[0] is model else evaluate_items(oracle[0], oracle[1], items[splits[0]], batch_size).truth_ratios
        report["forget_quality"] = forget_quality(ours, theirs)
    return report
