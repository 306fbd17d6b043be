"""The neutral bottom layer every package shares: texts, tokens, next-token NLL, files, user errors.

Import direction (tested): lmkit ← decompose ← evals ← editor ← benchmarks. Nothing here imports
torch or transformers at module level except the token/NLL modules, which need torch.
"""
