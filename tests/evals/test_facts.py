"""evals.facts: candidate scores, attribute accuracy and truth ratio against hand computations, the KS test
against known cases, and the cloze items of a generated facts folder."""

from __future__ import annotations

import copy
import math
import random

import pytest
import torch

from evals.facts import (
    CandidateScores,
    ClozeItem,
    accuracy,
    evaluate_items,
    forget_quality,
    ks_2samp,
    read_cloze,
    score_candidates,
    truth_ratio,
)

ITEMS = [
    ClozeItem("Jelia Briatrai was born in", "Koargard", ("Gronport", "Koargard", "Fraeroavale Dinaford"), 0, "birth_city"),
    ClozeItem("The company Vehe Manair works for is", "Demul Motors", ("Demul Motors", "Sorol Foods"), 1, "employer"),
    ClozeItem("Vehe Manair majored in", "law", ("law", "marine biology", "physics"), 1, "field"),
]


def _scores(logprob: list[float], tokens: list[int], answer: int) -> CandidateScores:
    return CandidateScores(torch.tensor(logprob, dtype=torch.float64), torch.tensor(tokens), answer)


def test_accuracy_counts_strict_first_places():
    first = _scores([-2.0, -1.0, -6.0], [1, 1, 2], answer=1)
    second = _scores([-2.0, -1.0, -6.0], [1, 1, 2], answer=0)
    tie = _scores([-1.0, -1.0], [1, 1], answer=0)
    assert accuracy([first, second, tie]) == pytest.approx(1 / 3)
    assert math.isnan(accuracy([]))


def test_truth_ratio_by_hand():
    # per-token NLL: 2/1, 1/1, 6/2 = [2, 1, 3]; true value 1 → exp(1 − (2 + 3)/2) = exp(−1.5)
    assert truth_ratio(_scores([-2.0, -1.0, -6.0], [1, 1, 2], answer=1)) == pytest.approx(math.exp(-1.5))
    # true value 0 → exp(2 − (1 + 3)/2) = 1
    assert truth_ratio(_scores([-2.0, -1.0, -6.0], [1, 1, 2], answer=0)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="wrong"):
        truth_ratio(_scores([-1.0], [1], answer=0))


def _unigram_llama(tok, bias: torch.Tensor | None):
    """A Llama whose next-token distribution is softmax(bias) whatever the context: every block's output
    projections are zero, every token embeds to the same vector, so the final hidden state is constant."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=False,
        rms_norm_eps=0.0,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    config._attn_implementation = "eager"
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.fill_(1.0 if "norm" in name else 0.0)
        model.model.embed_tokens.weight[:, 0] = 1.0  # RMS-normalised: 4·e0 (d = 16)
        if bias is not None:
            model.lm_head.weight[:, 0] = bias / 4.0
    return model


def _by_hand(tok, item: ClozeItem, unigram: torch.Tensor) -> list[float]:
    return [sum(float(unigram[t]) for t in tok(" " + c, add_special_tokens=False)["input_ids"]) for c in item.candidates]


def test_uniform_model_ranks_the_shortest_value_first_and_has_truth_ratio_one(shipped_tokenizer):
    tok = shipped_tokenizer
    model = _unigram_llama(tok, bias=None)
    scores = score_candidates(model, tok, ITEMS, batch_size=3)
    log_v = math.log(len(tok))
    for item, s in zip(ITEMS, scores):
        n = [len(tok(" " + c, add_special_tokens=False)["input_ids"]) for c in item.candidates]
        assert s.tokens.tolist() == n
        assert s.logprob.tolist() == pytest.approx([-k * log_v for k in n], rel=1e-5)
        assert truth_ratio(s) == pytest.approx(1.0, rel=1e-5)
        shortest = min(n)
        assert (n[s.answer] == shortest and n.count(shortest) == 1) == (accuracy([s]) == 1.0)


def test_unigram_model_matches_hand_computed_accuracy_and_truth_ratio(shipped_tokenizer):
    tok = shipped_tokenizer
    bias = torch.randn(len(tok), generator=torch.Generator().manual_seed(0)) * 3
    model = _unigram_llama(tok, bias)
    unigram = torch.log_softmax(bias.double(), 0)
    result = evaluate_items(model, tok, ITEMS, batch_size=2)
    hand_first, hand_ratios = [], []
    for item in ITEMS:
        lp = _by_hand(tok, item, unigram)
        n = [len(tok(" " + c, add_special_tokens=False)["input_ids"]) for c in item.candidates]
        a = item.candidates.index(item.answer)
        hand_first.append(all(lp[a] > x for k, x in enumerate(lp) if k != a))
        wrong = [-lp[k] / n[k] for k in range(len(lp)) if k != a]
        hand_ratios.append(math.exp(-lp[a] / n[a] - sum(wrong) / len(wrong)))
    assert result.accuracy == pytest.approx(sum(hand_first) / len(ITEMS))
    assert result.truth_ratios == pytest.approx(hand_ratios, rel=1e-4)
    assert set(result.accuracy_by_attribute) == {"birth_city", "employer", "field"}
    assert result.summary()["items"] == 3


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    from editor.model_io import load_model
    from tests.editor.clitools import save_tiny_gpt2

    return load_model(str(save_tiny_gpt2(tmp_path_factory.mktemp("facts-gpt2") / "gpt2")))


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_scores_do_not_depend_on_batching_and_match_a_direct_forward(arch, tiny, tiny_gpt2):
    model, tok = tiny if arch == "llama" else tiny_gpt2
    one = score_candidates(model, tok, ITEMS, batch_size=1)
    many = score_candidates(model, tok, ITEMS, batch_size=64)
    for a, b in zip(one, many):
        assert torch.allclose(a.logprob, b.logprob, atol=1e-4)
    item, c = ITEMS[0], 2
    prompt = tok(item.prompt)["input_ids"]
    cont = tok(" " + item.candidates[c], add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([prompt + cont])).logits[0].double(), -1)
    direct = sum(float(logp[len(prompt) - 1 + k, t]) for k, t in enumerate(cont))
    assert float(one[0].logprob[c]) == pytest.approx(direct, abs=1e-4)


def test_an_answer_outside_its_pool_is_refused(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="not among"):
        score_candidates(model, tok, [ClozeItem("x was born in", "Nowhere", ("Somewhere",))])


def test_ks_known_cases():
    same = ks_2samp([0.1, 0.5, 0.9], [0.9, 0.1, 0.5])
    assert (same.statistic, same.pvalue) == (0.0, 1.0)
    # fully separated 3 vs 3: D = 1, only 2 of the C(6,3) = 20 orderings reach it → p = 0.1
    apart = ks_2samp([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert apart.statistic == 1.0 and apart.pvalue == pytest.approx(0.1)
    # 1 vs 2 samples: D = 1 when the single value is at either end: p = 2/3; in the middle D = 1/2, p = 1
    assert ks_2samp([0.0], [1.0, 2.0]).pvalue == pytest.approx(2 / 3)
    assert ks_2samp([1.5], [1.0, 2.0]).pvalue == pytest.approx(1.0)
    # a perfect alternation a < b < a < b ...: the ECDFs differ by at most 1/4, which every path reaches
    alt = ks_2samp([1.0, 3.0, 5.0, 7.0], [2.0, 4.0, 6.0, 8.0])
    assert alt.statistic == pytest.approx(0.25) and alt.pvalue == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ks_2samp([], [1.0])


def test_ks_matches_scipy_where_installed():
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(0)
    for n, m, shift in [(5, 7, 1.0), (20, 20, 0.3), (37, 11, 0.8), (120, 90, 0.2)]:
        a = [rng.gauss(0, 1) for _ in range(n)]
        b = [rng.gauss(shift, 1) for _ in range(m)]
        ours, ref = ks_2samp(a, b), stats.ks_2samp(a, b)
        assert ours.statistic == pytest.approx(ref.statistic)
        assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-6)
    a = [rng.gauss(0, 1) for _ in range(1200)]
    b = [rng.gauss(0.1, 1) for _ in range(1100)]
    assert ks_2samp(a, b).pvalue == pytest.approx(stats.ks_2samp(a, b).pvalue, abs=0.02)  # the asymptotic branch


def test_forget_quality_is_high_for_one_distribution_and_low_for_two():
    rng = random.Random(1)
    oracle = [math.exp(rng.gauss(0, 0.3)) for _ in range(120)]
    close = [math.exp(rng.gauss(0, 0.3)) for _ in range(120)]
    known = [math.exp(rng.gauss(-2, 0.3)) for _ in range(120)]
    assert forget_quality(close, oracle) > 0.05
    assert forget_quality(known, oracle) < 1e-10


def test_read_cloze_from_a_generated_folder(tmp_path):
    from editor.targets.facts import FactsSpec, write_facts

    write_facts(tmp_path / "f", FactsSpec(seed=1, people=20, unseen=4, bios_per_person=1))
    forget = read_cloze(tmp_path / "f", "forget10")
    assert len(forget) == 2 * 6 * 2  # people × attributes × held-out templates
    assert all(i.answer in i.candidates for i in forget)
    assert len(read_cloze(tmp_path / "f", "unseen", phrasing="train")) == 4 * 6
    assert len(read_cloze(tmp_path / "f")) == 24 * 6 * 2
    with pytest.raises(ValueError, match="no split"):
        read_cloze(tmp_path / "f", "forget05")


class _NoLogitsToKeep(torch.nn.Module):
    """A causal LM whose forward takes no `logits_to_keep`: scored from its full logits instead."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.config = inner, inner.config

    def forward(self, input_ids, attention_mask):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask)


def test_models_without_logits_to_keep_score_the_same(tiny):
    model, tok = tiny
    kept = score_candidates(model, tok, ITEMS, batch_size=4)
    full = score_candidates(_NoLogitsToKeep(model), tok, ITEMS, batch_size=4)
    for a, b in zip(kept, full):
        assert torch.allclose(a.logprob, b.logprob, atol=1e-5) and torch.equal(a.tokens, b.tokens)


def test_facts_report_per_split_and_forget_quality_against_itself(tiny, tmp_path):
    from editor.targets.facts import FactsSpec, write_facts
    from evals.facts import facts_report, sample_people

    model, tok = tiny
    write_facts(tmp_path / "f", FactsSpec(seed=2, people=20, unseen=3, bios_per_person=1, dates=10, employers=10, cities=10, universities=10))
    first = facts_report(model, tok, tmp_path / "f", splits=("forget10", "unseen"), people=1)
    assert set(first["splits"]) == {"forget10", "unseen"} and "forget_quality" not in first
    assert first["splits"]["forget10"]["items"] == 6 * 2  # one person × six attributes × two held-out templates
    twin = copy.deepcopy(model)  # another object with the same weights: scored as an oracle, not short-cut
    again = facts_report(model, tok, tmp_path / "f", splits=("forget10",), people=1, oracle=(twin, tok))
    assert again["forget_quality"] == 1.0  # the same model is its own oracle
    items = read_cloze(tmp_path / "f", "retain")
    assert sample_people(items, None) == items and len({i.person for i in sample_people(items, 5, seed=1)}) == 5


def test_lm_eval_task_gives_the_same_accuracy(tiny, tmp_path):
    """`editor_facts` through lm-eval's own simple_evaluate (BOS first, as evals.facts scores) = evals.facts."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from editor.targets.facts import FactsSpec, write_facts
    from evals.harness import TEMPLATES

    model, tok = tiny
    folder = tmp_path / "f"
    write_facts(folder, FactsSpec(seed=3, people=10, unseen=1, bios_per_person=1, dates=12, employers=8, cities=10, universities=6))
    meta = {"facts_data": str(folder), "facts_split": "forget10", "facts_phrasing": "heldout"}
    tm = TaskManager(include_path=str(TEMPLATES), include_defaults=False, metadata=meta)
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=16, add_bos_token=True)
    r = simple_evaluate(model=lm, tasks=["editor_facts"], task_manager=tm, bootstrap_iters=0, log_samples=True)
    assert r is not None
    items = read_cloze(folder, "forget10")
    ours = score_candidates(model, tok, items)
    assert r["results"]["editor_facts"]["acc,none"] == pytest.approx(accuracy(ours))
    samples = sorted(r["samples"]["editor_facts"], key=lambda s: s["doc_id"])
    assert len(samples) == len(items) == 1 * 6 * 2  # one forget person × six attributes × two held-out phrasings
    for sample, s in zip(samples, ours):
        assert [float(ll) for ll, _ in sample["filtered_resps"]] == pytest.approx(s.logprob.tolist(), abs=1e-3)


def test_editor_eval_reports_facts_per_split_and_forget_quality(tiny, tiny_gpt2, tmp_path):
    """`editor eval`'s library call with a facts folder: a facts section per split, forget quality against
    the oracle (1.0 when the model is its own oracle), and the markdown table."""
    from editor import api
    from editor.targets.facts import FactsSpec, write_facts
    from evals.report import render_markdown

    model, tok = tiny
    folder = tmp_path / "f"
    write_facts(folder, FactsSpec(seed=4, people=20, unseen=2, bios_per_person=1, dates=8, employers=6, cities=8, universities=5))
    texts = ["a short text", "another one"]
    own = api.evaluate(model, tok, forget=texts, retain=texts, tasks=(), limit=2, facts=folder, facts_people=1, oracle=(model, tok, "itself"))
    facts = own["facts"]
    assert set(facts["splits"]) == {"forget10", "retain", "unseen"}
    assert all(s["items"] == 12 for s in facts["splits"].values())  # one person × six attributes × two paraphrases
    assert facts["forget_quality"] == 1.0 and facts["oracle"] == "itself"
    md = render_markdown({"model": {"name": "tiny"}, **own})
    assert "## Facts: attribute accuracy" in md and "Forget quality" in md
    other_model, other_tok = tiny_gpt2
    other = api.evaluate(model, tok, forget=texts, retain=texts, tasks=(), limit=2, facts=folder, facts_people=1, oracle=(other_model, other_tok, "gpt2"))
    assert 0.0 <= other["facts"]["forget_quality"] <= 1.0 and other["facts"]["splits"] == facts["splits"]
    without = api.evaluate(model, tok, forget=texts, retain=texts, tasks=(), limit=2, facts=folder, facts_people=1)
    assert "forget_quality" not in without["facts"]


def test_editor_eval_relearning_attack_on_its_own_attack_set(tiny, tmp_path):
    """`relearn_sets=(attack, measured)`: the attack fine-tunes on those texts only and is measured on the
    others, however small the forget set (tiny-facts: 10% of the forget people's biographies)."""
    from editor import api
    from editor.targets.facts import FactsSpec, write_facts
    from evals.suite import SuiteSettings

    model, tok = tiny
    folder = tmp_path / "f"
    write_facts(folder, FactsSpec(seed=6, people=20, unseen=2, bios_per_person=2, dates=8, employers=6, cities=8, universities=5))
    settings = SuiteSettings(tasks=(), limit=5, robustness=True, quant_bits=(8,), relearn={"steps": 2, "eval_every": 1, "batch_size": 2})
    report = api.evaluate(
        model,
        tok,
        forget=folder / "heldout-forget10.jsonl",
        retain=folder / "heldout-retain.jsonl",
        relearn_sets=(folder / "relearn.jsonl", folder / "heldout-relearn_eval.jsonl"),
        settings=settings,
    )
    r = report["robustness"]["relearn"]
    assert r["attack_documents"] == 1 * 2  # the one relearn person's two biographies
    assert r["measured_documents"] == 5  # the other forget person's held-out paraphrases, capped by the limit
    assert report["data"]["relearn_attack"].endswith("relearn.jsonl")
