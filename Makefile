# The two commands the README promises: `make demo` (install + run the demo) and `make test`.
# Both work with Debian's own python3 (PEP 668): everything installs into a project virtual environment, .venv/.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PIP := $(PY) -m pip

.PHONY: venv install demo test test-fast sysdeps lint bench shell core-check clean-venv

# Debian's python3 makes venvs only with python3-venv installed (ensurepip); install it once when missing.
$(PY):
	@$(PYTHON) -m venv $(VENV) >/dev/null 2>&1 || { \
	  rm -rf $(VENV); echo "installing python3-venv (apt-get) to create $(VENV)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && \
	  $(PYTHON) -m venv $(VENV); }
	@$(PIP) install -q --upgrade pip >/dev/null 2>&1 || true

venv: $(PY)

# The core only: index, anchors, plan, extract, prompt, report, demo (no torch).
install: $(PY)
	$(PIP) install -q -e .

demo: install
	$(BIN)/earmark demo
	@echo "earmark is installed in $(VENV)/: run $(BIN)/earmark, or 'source $(BIN)/activate' first"

# ffmpeg's CLI is the reference the golden tests compare against (PyAV bundles its own FFmpeg).
# Debian's chromium is the real browser the HTML report tests drive (headless, through playwright).
# Tux Paint's stamps (real photographs and recordings) and Asterisk's music on hold make RealStamp.
sysdeps:
	@{ command -v ffmpeg && command -v chromium && test -d /usr/share/tuxpaint/stamps && \
	   test -d /usr/share/asterisk/moh; } >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg chromium \
	    tuxpaint-stamps-default asterisk-moh-opsound-wav; }

test: sysdeps $(PY)
	$(PIP) install -q -e ".[test,vlm,eval,probes,ray,duckdb]"
	$(PY) -m pytest -q

# A developer's quick loop: everything but the tests marked slow.
test-fast: $(PY)
	$(PY) -m pytest -q -m "not slow"

# Prints the line that puts `earmark` on PATH in this shell.
shell: install
	@echo "source $(BIN)/activate"

lint: $(PY)
	$(PY) -m ruff check src tests benchmarks

bench: install sysdeps
	$(PY) benchmarks/startup.py
	$(PY) benchmarks/index_speed.py
	$(PY) benchmarks/extract.py

clean-venv:
	rm -rf $(VENV)
