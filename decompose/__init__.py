"""VPD (adversarial parameter decomposition) of Hugging Face causal LMs. Knows nothing of forgetting."""
