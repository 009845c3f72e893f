# The two commands the README promises: `make demo` (install + run the demo) and `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: install demo test sysdeps lint bench

install:
	$(PIP) install -q -e .

# ffmpeg's CLI is the reference the golden tests compare against (PyAV bundles its own FFmpeg).
# Debian's chromium is the real browser the HTML report tests drive (headless, through playwright).
sysdeps:
	@{ command -v ffmpeg && command -v chromium; } >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg chromium; }

demo: install
	$(PYTHON) -m earmark demo

test: sysdeps
	$(PIP) install -q -e ".[test,vlm,eval,probes]"
	$(PYTHON) -m pytest -q

lint:
	$(PYTHON) -m ruff check src tests benchmarks

bench: install sysdeps
	$(PYTHON) benchmarks/index_speed.py
	$(PYTHON) benchmarks/extract.py
