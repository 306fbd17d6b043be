"""The recipe of a default target model: which training data, which Llama shape, how to train it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from decompose.config_base import BaseConfig

Source = Literal["wikitext", "benign", "toxic"]


class LlamaShape(BaseConfig):
    """Shape of the `LlamaForCausalLM` (the vocabulary size comes from the tokenizer)."""

    n_layers: PositiveInt = Field(4, description="Transformer blocks.")
    d_model: PositiveInt = Field(128, description="Residual width (hidden_size).")
    n_heads: PositiveInt = Field(4, description="Attention heads.")
    n_kv_heads: PositiveInt = Field(4, description="Key/value heads (grouped-query attention when < n_heads).")
    d_mlp: PositiveInt = Field(512, description="SwiGLU intermediate size.")
    max_seq_len: PositiveInt = Field(128, description="Context length (max_position_embeddings).")
    tie_embeddings: bool = Field(True, description="Share the embedding and unembedding matrices.")

    @model_validator(mode="after")
    def _heads_divide(self) -> LlamaShape:
        if self.d_model % self.n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError("d_model must be divisible by n_heads, and n_heads by n_kv_heads")
        return self


class TrainSettings(BaseConfig):
    """AdamW with linear warmup and cosine decay on random windows of the packed training text."""

    steps: PositiveInt = Field(4000, description="Optimiser steps.")
    batch_size: PositiveInt = Field(16, description="Sequences per step.")
    seq_len: PositiveInt = Field(128, description="Tokens per training sequence (≤ max_seq_len).")
    lr: PositiveFloat = Field(3e-3, description="Peak learning rate.")
    warmup_steps: int = Field(100, ge=0, description="Linear warmup steps.")
    min_lr_frac: float = Field(0.1, ge=0, le=1, description="Final learning rate as a fraction of the peak.")
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay (matrices only).")
    grad_clip: PositiveFloat = Field(1.0, description="Global gradient-norm clip.")
    seed: int = Field(0, description="Seeds initialisation, data order and window sampling.")
    threads: PositiveInt = Field(2, description="torch CPU threads; fixed so a rebuild is bit-identical.")


class ExtraData(BaseConfig):
    """A training file besides the shipped sources (the biographies of `editor target facts`, say)."""

    path: str = Field(description="JSONL or text file; a relative path is taken from the repository root.")
    repeat: PositiveInt = Field(1, description="Copies of its documents in the training text (oversamples a small file).")


class TargetRecipe(BaseConfig):
    """A default target: `tiny-toxic` trains on all sources, `tiny-clean` (the oracle) without toxic tweets."""

    name: str = Field(description="Model name; the shipped checkpoint lives in examples/models/<name>.")
    sources: list[Source] = Field(description="Training splits to use (held-out parts are never used).")
    data: list[ExtraData] = Field(default_factory=list, description="Further training files, each repeated `repeat` times.")
    model: LlamaShape = Field(default_factory=LlamaShape)
    train: TrainSettings = Field(default_factory=TrainSettings)

    @model_validator(mode="after")
    def _fits_context(self) -> TargetRecipe:
        if self.train.seq_len > self.model.max_seq_len:
            raise ValueError("train.seq_len must not exceed model.max_seq_len")
        if not self.sources and not self.data:
            raise ValueError("sources and data must not both be empty")
        return self
