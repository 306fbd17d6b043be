"""The shipped default targets: data split, tokenizer, and the tiny Llama models trained on them."""
