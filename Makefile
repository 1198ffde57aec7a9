# papertide: `make run` starts everything on the embedded default; `make test` runs the checks and the suite.
VENV ?= .venv
PYTHON ?= python3
PORT ?= 8000
# torch goes in first, pinned to the CPU build, so pip does not pull a multi-GB CUDA build for
# sentence-transformers. Where pip's index serves CUDA builds by default, add the CPU index:
#   make run TORCH_INDEX=<the PyTorch CPU wheel index URL>   (see README)
# GPU machines install the torch they need into the venv and skip this pin.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=

BIN := $(VENV)/bin

# requirements.lock pins the exact version of everything else (constraints: pyproject.toml still
# says what is needed; the lock says which versions). `make lock` rewrites it from a working venv.
LOCK := requirements.lock

.PHONY: run test lint install install-dev lock clean

$(BIN)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install $(TORCH_SPEC) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -c $(LOCK) -e .
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed
	$(BIN)/pip install -c $(LOCK) -e '.[dev]'
	touch $@

lock: $(BIN)/.installed-dev
	$(BIN)/python scripts/lock_requirements.py

install: $(BIN)/.installed

install-dev: $(BIN)/.installed-dev

run: $(BIN)/.installed
	$(BIN)/papertide up --port $(PORT)

lint: $(BIN)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src tests
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
