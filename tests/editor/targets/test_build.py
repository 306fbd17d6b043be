"""Building a default target: recipes, deterministic training, and an atomic, loadable checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from editor.errors import EditorError
from editor.recipe import dump_recipe, load_recipe
from editor.targets.config import LlamaShape, TargetRecipe, TrainSettings
from editor.targets.train import build_model, lr_at, save_target, train_target

TEXTS = [
    "The history of the city begins in the ninth century .",
    "I just got home and the dog ate my homework lol",
    "In 1998 , the band released their second album to mixed reviews .",
    "what a day , cannot wait for the weekend",
    "The river flows north through the valley before it reaches the sea .",
    "Café naïve 😀 日本語",
]


def tiny_recipe(**train) -> TargetRecipe:
    settings = dict(steps=5, batch_size=4, seq_len=16, warmup_steps=2, threads=1, seed=0)
    settings.update(train)
    return TargetRecipe(
        name="tiny-test",
        sources=["benign"],
        model=LlamaShape(n_layers=1, d_model=32, n_heads=2, n_kv_heads=2, d_mlp=64, max_seq_len=16),
        train=TrainSettings(**settings),
    )


@pytest.fixture(scope="module")
def trained(shipped_tokenizer):
    torch.set_num_threads(1)
    recipe = tiny_recipe()
    steps: list[tuple[int, float]] = []
    model, log = train_target(recipe, shipped_tokenizer, TEXTS, on_step=lambda s, loss: steps.append((s, loss)))
    return recipe, model, log, steps


def test_train_runs_and_logs(trained):
    recipe, model, log, steps = trained
    assert [s for s, _ in steps] == list(range(recipe.train.steps))
    assert log["loss"] == [loss for _, loss in steps]
    assert all(torch.isfinite(torch.tensor(log["loss"])))
    assert log["tokens_in_stream"] > recipe.train.seq_len
    assert not model.training
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size) == (1, 32, 2, 64)
    assert cfg.max_position_embeddings == 16


def test_training_is_deterministic(trained, shipped_tokenizer):
    recipe, model, log, _ = trained
    again, log2 = train_target(recipe, shipped_tokenizer, TEXTS)
    assert log2["loss"] == log["loss"]
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_seed_changes_weights(trained, shipped_tokenizer):
    recipe, model, _, _ = trained
    other, _ = train_target(tiny_recipe(steps=1, seed=1), shipped_tokenizer, TEXTS)
    assert not torch.equal(model.model.embed_tokens.weight, other.model.embed_tokens.weight)


def test_stream_too_short_fails(shipped_tokenizer):
    with pytest.raises(ValueError, match="too short"):
        train_target(tiny_recipe(steps=1), shipped_tokenizer, ["hi"])


def test_build_model_matches_tokenizer(shipped_tokenizer):
    torch.manual_seed(0)
    model = build_model(tiny_recipe(), shipped_tokenizer)
    assert model.config.vocab_size == len(shipped_tokenizer)
    assert model.config.bos_token_id == shipped_tokenizer.bos_token_id
    assert model.config.pad_token_id == shipped_tokenizer.pad_token_id
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()  # tied


def test_lr_schedule():
    r = tiny_recipe(steps=10, warmup_steps=2, lr=1.0, min_lr_frac=0.1)
    assert lr_at(0, r) == pytest.approx(0.5)
    assert lr_at(1, r) == pytest.approx(1.0)
    assert lr_at(2, r) == pytest.approx(1.0)
    assert lr_at(10, r) == pytest.approx(0.1)
    values = [lr_at(s, r) for s in range(2, 10)]
    assert values == sorted(values, reverse=True)


def test_save_and_reload(trained, shipped_tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    recipe, model, log, _ = trained
    out = tmp_path / "models" / "tiny-test"
    assert save_target(model, shipped_tokenizer, recipe, log, 1.23, out) == out
    assert not list(out.parent.glob("*.tmp-build"))
    assert (out / "config.json").is_file()
    assert list(out.glob("*.safetensors"))

    loaded = AutoModelForCausalLM.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    batch = tok(["The history of the city", "lol ok"], return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = model(**batch).logits
        got = loaded(**batch).logits
    assert torch.equal(expected, got)
    assert tok("hello world")["input_ids"] == shipped_tokenizer("hello world")["input_ids"]

    saved = yaml.safe_load((out / "recipe.yaml").read_text())
    assert TargetRecipe.model_validate(saved) == recipe
    summary = json.loads((out / "training.json").read_text())
    assert summary["tokens_in_stream"] == log["tokens_in_stream"]
    assert summary["seconds"] == 1.2
    assert summary["loss_every_50"] == log["loss"][:1]
    assert summary["final_train_loss_mean_last_100"] == pytest.approx(sum(log["loss"]) / len(log["loss"]))
    assert summary["torch"] == torch.__version__


def test_save_replaces_only_its_own_earlier_build(trained, shipped_tokenizer, tmp_path):
    recipe, model, log, _ = trained
    out = tmp_path / "m"
    save_target(model, shipped_tokenizer, recipe, log, 0.0, out)
    (tmp_path / "m.tmp-build").mkdir()  # a leftover from an interrupted build
    with pytest.raises(EditorError, match="already exists; pass --force"):
        save_target(model, shipped_tokenizer, recipe, log, 0.0, out)
    save_target(model, shipped_tokenizer, recipe, log, 0.0, out, force=True)  # its own earlier build: replaced
    assert not (tmp_path / "m.tmp-build").exists()
    (out / "stale.bin").write_text("old")  # not ours: never deleted, whatever the flag
    with pytest.raises(EditorError, match="holds files editor did not write"):
        save_target(model, shipped_tokenizer, recipe, log, 0.0, out, force=True)
    assert (out / "stale.bin").read_text() == "old"


# --- recipes ---------------------------------------------------------------------------------------


def test_shipped_recipes():
    toxic = load_recipe(TargetRecipe, "tiny-toxic", "targets")
    clean = load_recipe(TargetRecipe, "tiny-clean", "targets")
    assert toxic.name == "tiny-toxic" and clean.name == "tiny-clean"
    assert "toxic" in toxic.sources
    assert "toxic" not in clean.sources
    assert set(clean.sources) == set(toxic.sources) - {"toxic"}
    t, c = toxic.model_dump(), clean.model_dump()
    for key in ("name", "sources"):
        t.pop(key), c.pop(key)
    assert t == c
    assert toxic.train.steps == clean.train.steps


def test_overrides():
    cfg = load_recipe(TargetRecipe, "tiny-toxic", "targets", ["train.steps=7", "model.n_layers=2", "sources=[wikitext]"])
    assert cfg.train.steps == 7
    assert cfg.model.n_layers == 2
    assert cfg.sources == ["wikitext"]
    assert cfg.train.lr == load_recipe(TargetRecipe, "tiny-toxic", "targets").train.lr
    clean = load_recipe(TargetRecipe, "tiny-clean", "targets", ["train.lr=0.001"])
    assert clean.train.lr == 0.001 and clean.name == "tiny-clean"


@pytest.mark.parametrize(
    "override, expected",
    [
        ("train.nope=1", "train.nope"),
        ("nope=1", "nope"),
        ("train.steps=abc", "train.steps"),
        ("train.steps=0", "train.steps"),
        ("train.lr=-1", "train.lr"),
        ("sources=[wikitext, reddit]", "sources"),
        ("model.n_heads=3", "divisible"),
        ("train.seq_len=4096", "max_seq_len"),
        ("train.steps", "--set expects key=value"),
        ("=3", "--set expects key=value"),
        ("name.x=1", "'name' is not a section"),
    ],
)
def test_bad_override(override, expected):
    with pytest.raises(EditorError) as e:
        load_recipe(TargetRecipe, "tiny-toxic", "targets", [override])
    assert expected in str(e.value)


def test_unknown_recipe():
    with pytest.raises(EditorError) as e:
        load_recipe(TargetRecipe, "no-such-recipe", "targets")
    assert str(e.value) == "unknown targets recipe 'no-such-recipe' (known: tiny-clean, tiny-facts, tiny-facts-retain, tiny-toxic)"


def test_recipe_file_with_include(tmp_path):
    (tmp_path / "base.yaml").write_text("name: base\nsources: [benign]\ntrain: {steps: 9, lr: 0.01}\n")
    (tmp_path / "child.yaml").write_text("include: base.yaml\nname: child\ntrain: {steps: 3}\n")
    cfg = load_recipe(TargetRecipe, str(tmp_path / "child.yaml"), "targets")
    assert (cfg.name, cfg.sources, cfg.train.steps, cfg.train.lr) == ("child", ["benign"], 3, 0.01)


@pytest.mark.parametrize(
    "content, expected",
    [
        ("name: [unclosed\n", "invalid YAML"),
        ("- a\n- b\n", "a recipe must be a mapping, got list"),
        ("sources: [benign]\n", "name: Field required"),
    ],
)
def test_bad_recipe_file(tmp_path, content, expected):
    path = tmp_path / "r.yaml"
    path.write_text(content)
    with pytest.raises(EditorError) as e:
        load_recipe(TargetRecipe, str(path), "targets")
    assert expected in str(e.value)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(EditorError, match="no such recipe file"):
        load_recipe(TargetRecipe, str(tmp_path / "nope.yaml"), "targets")


def test_dump_recipe_round_trips():
    cfg = load_recipe(TargetRecipe, "tiny-clean", "targets")
    assert TargetRecipe.model_validate(yaml.safe_load(dump_recipe(cfg))) == cfg


def test_recipe_data_files_are_repeated_into_the_training_text(tmp_path):
    from editor.targets.train import training_texts

    bios = tmp_path / "bios.jsonl"
    bios.write_text('{"text": "Jelia Briatrai was born in Koargard."}\n{"text": "Vehe Manair works for Demul Motors."}\n', encoding="utf-8")
    recipe = TargetRecipe(name="facts-test", sources=[], data=[{"path": str(bios), "repeat": 3}])
    texts = training_texts(recipe)
    assert len(texts) == 6 and texts.count("Vehe Manair works for Demul Motors.") == 3
    assert "repeat: 3" in dump_recipe(recipe)
    with pytest.raises(ValueError, match="both be empty"):
        TargetRecipe(name="nothing", sources=[])
    with pytest.raises(EditorError, match="no such file"):
        training_texts(TargetRecipe(name="missing", sources=[], data=[{"path": "examples/data/no-such.jsonl"}]))


def test_facts_recipes_differ_only_in_the_forget_people():
    facts = load_recipe(TargetRecipe, "tiny-facts", "targets")
    oracle = load_recipe(TargetRecipe, "tiny-facts-retain", "targets")
    assert facts.sources == oracle.sources == ["wikitext"]
    assert [d.path for d in facts.data] == ["examples/data/facts/biographies.jsonl"]
    assert [d.path for d in oracle.data] == ["examples/data/facts/retain.jsonl"]
    assert [d.repeat for d in facts.data] == [d.repeat for d in oracle.data]
    toxic = load_recipe(TargetRecipe, "tiny-toxic", "targets")
    assert facts.model == oracle.model == toxic.model and facts.train == oracle.train
    assert facts.train.model_copy(update={"threads": toxic.train.threads}) == toxic.train  # one thread, else tiny-toxic's schedule
