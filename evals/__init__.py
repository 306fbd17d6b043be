"""Evaluation of any `transformers.PreTrainedModel` (or PeftModel): NLL (`nll`), lm-eval tasks (`harness`),
toxicity of generations (`toxicity`, `scorer`), robustness to relearning and quantization (`robustness`),
and reports (`suite`, `report`, `plots`). Nothing here imports `editor`."""
