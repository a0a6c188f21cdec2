# One-command setup: `make demo` and `make test` install what they need on first use.
#
#   .venv       the core (training, export, emulator, report, CLI, notebooks) on the newest CPython
#               >= 3.11 found here whose wheels install, with numpy 2 and a current torch.
#   .venv-lava  optional: Python 3.10 with lava-nc 0.10 / lava-dl 0.6 (Lava's last releases pin 3.10,
#               numpy < 2, torch 2.3). The core runs Lava in it as a subprocess. Built only when a
#               Python 3.10 is found; without it the Lava steps are skipped with a note.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LAVA_VENV := .venv-lava
LAVA_STAMP := $(LAVA_VENV)/.installed
# Candidate interpreters, newest first; pyenv machines keep them outside PATH, so look there too.
PYTHON_CANDIDATES ?= $(foreach v,3.13 3.12 3.11,$(shell command -v python$(v) >/dev/null 2>&1 && python$(v) -c '' 2>/dev/null && echo python$(v); ls -d $$HOME/.pyenv/versions/$(v).*/bin/python$(v) 2>/dev/null | sort -V | tail -n 1))
PYTHON310 ?= $(shell command -v python3.10 >/dev/null 2>&1 && python3.10 -c '' 2>/dev/null && echo python3.10 || ls -d $$HOME/.pyenv/versions/3.10*/bin/python3.10 2>/dev/null | sort -V | tail -n 1)

.PHONY: install lava demo test test-core wheel-check clean-venv

install: $(STAMP) lava

$(STAMP): pyproject.toml
	@# an existing core environment is updated in place, unless it is an old single Python 3.10 one
	@if [ -x $(PY) ] && $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	    && $(PY) -m pip install --quiet -e ".[dev]"; then touch $(STAMP); exit 0; fi; \
	ok=; \
	for py in $(PYTHON_CANDIDATES); do \
	  echo "setting up $(VENV) with $$py ($$($$py --version 2>&1))"; \
	  rm -rf $(VENV) && $$py -m venv $(VENV) && $(PY) -m pip install --quiet --upgrade pip \
	    && $(PY) -m pip install --quiet -e ".[dev]" && ok=1 && break; \
	  echo "$$py: install failed, trying the next Python" >&2; \
	done; \
	if [ -z "$$ok" ]; then echo "error: no Python 3.11-3.13 here could install the project (set PYTHON_CANDIDATES=/path/to/python3.x)" >&2; exit 1; fi; \
	touch $(STAMP)

# Lava is optional: without Python 3.10 this prints why and succeeds.
lava:
	@if [ -z "$(PYTHON310)" ]; then \
	  echo "note: Lava's environment is not set up: no Python 3.10 found (lava-nc 0.10 needs 3.10). Set PYTHON310=/path/to/python3.10 to enable the Lava check; the emulator runs either way."; \
	else $(MAKE) --no-print-directory $(LAVA_STAMP); fi

$(LAVA_STAMP): pyproject.toml
	@[ -x $(LAVA_VENV)/bin/python ] || $(PYTHON310) -m venv $(LAVA_VENV)
	$(LAVA_VENV)/bin/python -m pip install --quiet "lava-nc==0.10.0" "lava-dl==0.6.0" "numpy<2" h5py
	$(LAVA_VENV)/bin/python -m pip install --quiet --no-deps -e .
	@touch $(LAVA_STAMP)

demo: install
	$(VENV)/bin/eventprop demo --out runs/demo

test: install
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory wheel-check

# The wheel installs into a fresh environment on the same (newest) Python and runs without Lava and
# outside the source tree. Its dependencies come from .venv through a .pth file (no second download).
wheel-check: $(STAMP)
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PY) -m build --wheel --outdir "$$tmp/dist" . >/dev/null; \
	$(PY) -m venv "$$tmp/venv"; \
	deps=$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	site=$$("$$tmp/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	echo "$$deps" > "$$site/core-deps.pth"; \
	"$$tmp/venv/bin/python" -m pip install --quiet --no-deps "$$tmp"/dist/*.whl; \
	cd "$$tmp" && PYTHONNOUSERSITE=1 bash $(CURDIR)/tests/wheel_smoke.sh "$$tmp/venv/bin"

clean-venv:
	rm -rf $(VENV) $(LAVA_VENV)
