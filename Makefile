# One way to do each chore: `make run`, `make test`, `make lint`, `make migrate`, `make admin EMAIL=...`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip --disable-pip-version-check

.PHONY: run test test-fast lint migrate admin cleanup benchmark benchmark-real-size benchmark-gpu loadtest train-model train-control train-upscaler evaluate-model examples system-packages browser

run: $(VENV)/.run-installed
	exec $(PY) -m webapp.launch

# Two test processes (pytest-xdist): most tests wait on worker processes, Redis or the browser, so two keep
# a 2-core machine busy; TEST_JOBS=1 runs them one by one, TEST_JOBS=4 suits a bigger machine.
TEST_JOBS ?= 2

test: $(VENV)/.dev-installed browser
	$(PY) -m pytest -n $(TEST_JOBS) --dist worksteal

test-fast: $(VENV)/.dev-installed
	$(PY) -m pytest -n $(TEST_JOBS) --dist worksteal -m "not browser"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# spandrel (upscaler networks) declares torchvision, whose PyPI wheel cannot load beside the CPU torch
# wheel; Easel uses no architecture that needs it, so spandrel and einops are installed without deps.
NODEPS := spandrel==0.4.2 einops==0.8.2

$(VENV)/.run-installed: requirements.txt Makefile | $(VENV)/bin/python
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps $(NODEPS)
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt $(VENV)/.run-installed
	$(PIP) install -q -r requirements-dev.txt
	touch $@

# Debian's Chromium for the browser tests (never a browser download of Playwright's own).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium is missing: run 'sudo apt-get install -y chromium' (browser tests will be skipped)"; fi; \
	fi

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check webapp jobs models tests

migrate: $(VENV)/.run-installed
	EASEL_ENV=$${EASEL_ENV:-development} FLASK_APP=wsgi:app $(VENV)/bin/flask db upgrade

admin: $(VENV)/.run-installed
	EASEL_ENV=$${EASEL_ENV:-development} FLASK_APP=wsgi:app $(VENV)/bin/flask db upgrade
	EASEL_ENV=$${EASEL_ENV:-development} FLASK_APP=wsgi:app $(VENV)/bin/flask create-admin "$(EMAIL)"

cleanup: $(VENV)/.run-installed
	EASEL_ENV=$${EASEL_ENV:-development} FLASK_APP=wsgi:app $(VENV)/bin/flask cleanup $(ARGS)

benchmark: $(VENV)/.dev-installed
	$(PY) -m pytest tests/benchmarks --ignore=tests/benchmarks/test_real_size.py -s -o addopts="" -p no:cacheprovider --timeout=1800

# SD 1.5 at real size with random weights (builds ~4.3 GB); EASEL_BENCH_DEVICE=cuda for the GPU run
benchmark-real-size: $(VENV)/.dev-installed
	$(PY) -m pytest tests/benchmarks/test_real_size.py -s -o addopts="" -p no:cacheprovider --timeout=3600

# On a CUDA machine, both GPU benchmarks with one built SD 1.5-size pipeline (in BENCH_DIR): real size
# (bare vs Easel, eager and torch.compile) and batching (4 and 8 people); results in gpu-*.json.
BENCH_DIR ?= /tmp/easel-bench
benchmark-gpu: $(VENV)/.dev-installed
	mkdir -p $(BENCH_DIR); status=0; \
	EASEL_BENCH_DEVICE=cuda EASEL_BENCH_DIR=$(BENCH_DIR) EASEL_BENCH_OUT=gpu-real-size.json \
	  $(PY) -m pytest tests/benchmarks/test_real_size.py -s -o addopts="" -p no:cacheprovider --timeout=3600 || status=1; \
	EASEL_DEVICE=cuda EASEL_BENCH_SD15=$(BENCH_DIR)/sd15-random EASEL_BENCH_PEOPLE=4,8 EASEL_BENCH_OUT=gpu-batching.json \
	  $(PY) -m pytest tests/benchmarks/test_batching.py -s -o addopts="" -p no:cacheprovider --timeout=3600 || status=1; \
	exit $$status

# 50 people polling and 10 making pictures for a minute against a real site on 127.0.0.1 (tests/load/).
loadtest: $(VENV)/.dev-installed
	$(PY) tests/load/run.py $(ARGS)

# The landing page's examples: a few 64x64 pictures by the bundled model, committed in static/examples/.
examples: $(VENV)/.run-installed
	$(PY) -m models.training.examples

train-model: $(VENV)/.run-installed
	$(PY) -m models.training.train --out models/easel-tiny

# The bundled scribble ControlNet for easel-tiny (about 40 minutes on a busy 2-core CPU; resumable, see its
# model card), then its scores (eval.json, eval_grid.png beside the weights).
train-control: $(VENV)/.run-installed
	nice -n 10 $(PY) -m models.training.train_control --out models/controls/easel-scribble --minutes 36
	nice -n 10 $(PY) -m models.training.evaluate_control

train-upscaler: $(VENV)/.run-installed
	$(PY) -m models.training.train_upscaler --out models/upscalers/easel-compact-x4

evaluate-model: $(VENV)/.run-installed
	$(PY) -m models.training.evaluate
