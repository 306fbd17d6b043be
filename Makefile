# Entry points: `make demo`, `make test` (the default tier), `make test-all` (slow tier too), `make check` (lint + types).
PYTHON ?= python3
VENV ?= .venv
# torch==2.13.0 resolves to a local CPU wheel on the project's machines; override to keep yours.
TORCH_SPEC ?= torch==2.13.0
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS ?= 1

STAMP := $(VENV)/.installed
CODE := lmkit decompose evals editor

.PHONY: demo test test-all check setup browser

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -c "import torch" 2>/dev/null || $(VENV)/bin/pip install -q "$(TORCH_SPEC)"
	$(VENV)/bin/pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/editor forget --dataset examples/forget/toxic.jsonl --out runs/demo --force

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

test-all: $(STAMP) browser
	$(VENV)/bin/python -m pytest -q --runslow

# Debian's Chromium for the slow tier's browser test of `editor graph` pages; where it cannot be installed
# (no apt, no root), that one test skips and says why.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get install -y -q chromium >/dev/null 2>&1; } \
		|| echo "could not install chromium (apt-get as root): the browser test will skip"

check: $(STAMP)
	$(VENV)/bin/ruff check $(CODE) benchmarks tests
	$(VENV)/bin/ruff format --check $(CODE)
	$(VENV)/bin/mypy
