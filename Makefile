# One-command setup: `make demo` and `make test` install into .venv on first use.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Lava needs Python 3.10; pyenv machines keep it outside PATH, so look there too.
PYTHON310 ?= $(shell command -v python3.10 >/dev/null 2>&1 && python3.10 -c '' 2>/dev/null && echo python3.10 || ls -d $$HOME/.pyenv/versions/3.10*/bin/python3.10 2>/dev/null | tail -n 1)

.PHONY: install demo test clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON310)" ]; then echo "error: python3.10 not found (Lava requires Python 3.10); set PYTHON310=/path/to/python3.10" >&2; exit 1; fi
	@[ -x $(PY) ] || $(PYTHON310) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[lava,tonic,dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/eventprop demo --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
