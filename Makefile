# Two commands on a fresh machine:  make demo   and   make test
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
EXTRAS ?= dev
comma  := ,
STAMP  := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
OUT    ?= demo-output

# The one copy of these hints is tinygrad_softmax/lecture/extras.py; a test keeps this line identical.
GRAPHVIZ_INSTALL := sudo apt-get install graphviz (Debian/Ubuntu), brew install graphviz (macOS), winget install graphviz (Windows), conda install -c conda-forge graphviz (conda)

.PHONY: help install system-deps browser demo test lint format bench docs-images notebook clean

help:
	@echo "make demo     set everything up, then run the lecture demo into $(OUT)/"
	@echo "make test     set everything up, then run the whole test suite"
	@echo "make lint     ruff check, ruff format --check, mypy"
	@echo "make bench    the benchmark; writes docs/benchmarks.md"
	@echo "make docs-images   regenerate the pictures in docs/images/"
	@echo "make notebook install JupyterLab into $(VENV) and open docs/lecture.ipynb"

# One line per stage, so a first run that takes a minute says what it is doing.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "Python 3.10+ is needed; set PYTHON=python3.x"; exit 1; }
	@echo "set-up 1/3: a virtual environment in $(VENV)/ (Python: $(PYTHON))"
	@$(PYTHON) -m venv $(VENV)
	@echo "set-up 2/3: updating pip"
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@echo "set-up 3/3: installing tinygrad_softmax[$(EXTRAS)] and its dependencies (a minute or two the first time)"
	@$(PY) -m pip install --quiet --disable-pip-version-check -e ".[$(EXTRAS)]"
	@touch $@

install: $(STAMP) system-deps

# Graphviz's `dot` program renders the graphs; the Python package is only bindings.
system-deps:
	@if command -v dot >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		echo "set-up: installing Graphviz (dot) with apt-get"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq graphviz >/dev/null; \
	else \
		echo "set-up: Graphviz's dot program is missing, so graphs are saved as DOT text only."; \
		echo "Install it with: $(GRAPHVIZ_INSTALL)"; \
	fi

# Chromium runs the explorer page's browser tests (Playwright drives it and downloads no browser).
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		echo "set-up: installing Chromium with apt-get (for the explorer page's browser tests)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "set-up: no chromium on PATH, so the explorer page's browser tests are skipped; to run them,"; \
		echo "set TINYGRAD_SOFTMAX_CHROMIUM to a Chromium or Chrome program (e.g. the one inside Chromium.app)."; \
	fi

demo: install
	$(PY) -m tinygrad_softmax demo --out $(OUT)

# On every core (pytest-xdist); the long runs the tests read (the demo, the quick benchmark) are made
# once for all the workers (tests/conftest.py: make_once). The summary at the end says which optional
# tests were skipped and how to run them, failed or not.
test: install browser
	$(PY) -m pytest -n auto --dist loadgroup

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The benchmark's peers (PyTorch, HIPS autograd, micrograd, JAX) are the bench extra.
bench:
	@$(MAKE) --no-print-directory install EXTRAS=bench
	$(PY) -m tinygrad_softmax bench --write docs/benchmarks.md --readme README.md $(BENCH_ARGS)

docs-images: install
	$(PY) -m tinygrad_softmax graph --out docs/images/softmax_graph.png --wide
	$(PY) -m tinygrad_softmax graph --out docs/images/softmax_graph_row.png --wide --layout row --show-grads
	$(PY) -m tinygrad_softmax graph --out docs/images/softmax_graph_rules.png --show-rules
	$(PY) -m tinygrad_softmax graph --out docs/images/softmax_graph_collapsed.png --wide --collapse --show-values --show-grads
	$(PY) -m tinygrad_softmax graph --out docs/images/softmax_graph_compact.png --wide --compact
	$(PY) -m tinygrad_softmax graph --out docs/images/softmax_graph_mlp.png --wide --model mlp --compact --collapse
	$(PY) -m tinygrad_softmax animate --out docs/images/backward --gif
	$(PY) -m tinygrad_softmax anomaly --out docs/images
	$(PY) -m tinygrad_softmax epsilon --plot docs/images/epsilon_sweep.png
	$(PY) -m tinygrad_softmax demo --out $(OUT)
	cp $(OUT)/digits-loss.png $(OUT)/digits-weights.png $(OUT)/iris-loss.png docs/images/
	cp $(OUT)/spiral-boundaries.png $(OUT)/moons-boundaries.png docs/images/
	cp $(OUT)/hessian-column.png $(OUT)/newton-iris.png $(OUT)/modes.png docs/images/
	$(PY) tests/browser.py $(OUT)/explorer.html docs/images/explorer.png --step 9

# JupyterLab is the `notebook` extra; the notebook opens in the browser JupyterLab starts.
notebook:
	@$(MAKE) --no-print-directory install EXTRAS=notebook
	@echo "opening docs/lecture.ipynb in JupyterLab (Ctrl-C here to stop it)"
	$(VENV)/bin/jupyter lab docs/lecture.ipynb

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache .hypothesis
