# Two commands on a fresh machine:  make demo   and   make test
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
EXTRAS ?= dev
comma  := ,
STAMP  := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
OUT    ?= demo-output

.PHONY: help install system-deps demo test lint format bench docs-images clean

help:
	@echo "make demo     set everything up, then run the lecture demo into $(OUT)/"
	@echo "make test     set everything up, then run the whole test suite"
	@echo "make lint     ruff check, ruff format --check, mypy"
	@echo "make bench    the benchmark; writes docs/benchmarks.md"
	@echo "make docs-images   regenerate the pictures in docs/images/"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "Python 3.10+ is needed; set PYTHON=python3.x"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $@

install: $(STAMP) system-deps

# Graphviz's `dot` program renders the graphs; the Python package is only bindings.
system-deps:
	@if command -v dot >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Graphviz (dot) with apt-get"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq graphviz >/dev/null; \
	else \
		echo "Graphviz's 'dot' program is missing: install it with 'brew install graphviz' (macOS),"; \
		echo "'winget install graphviz' (Windows) or 'conda install python-graphviz', then run make again."; \
		echo "Graphs are then saved as DOT text only."; \
	fi

demo: install
	$(PY) -m tinygrad_softmax demo --out $(OUT)

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) -m tinygrad_softmax bench --write docs/benchmarks.md

docs-images: install
	$(PY) -m tinygrad_softmax graph --out docs/images/softmax_graph.png
	$(PY) -m tinygrad_softmax graph --out docs/images/softmax_graph_row.png --layout row --show-grads
	$(PY) -m tinygrad_softmax graph --out docs/images/softmax_graph_rules.png --show-rules --rankdir TB
	$(PY) -m tinygrad_softmax graph --out docs/images/softmax_graph_collapsed.png --collapse --show-values --show-grads
	$(PY) -m tinygrad_softmax graph --out docs/images/softmax_graph_compact.png --compact
	$(PY) -m tinygrad_softmax animate --out docs/images/backward --gif --rankdir TB --dpi 72
	$(PY) -m tinygrad_softmax anomaly --out docs/images
	$(PY) -m tinygrad_softmax epsilon --plot docs/images/epsilon_sweep.png
	$(PY) -m tinygrad_softmax demo --out $(OUT)
	cp $(OUT)/digits-loss.png $(OUT)/digits-weights.png $(OUT)/iris-loss.png docs/images/

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache .hypothesis
