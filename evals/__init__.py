"""Evaluation of any `transformers.PreTrainedModel`: NLL, generations (lm-eval, toxicity, robustness to come)."""
