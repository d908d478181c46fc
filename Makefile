# `make demo` and `make test` each build .venv on demand from $(PYTHON); nothing else is needed
# on a machine that has the PostgreSQL server binaries (or a DATABASE_URL).
PYTHON ?= python3
VENV ?= .venv
# Extra pip requirement, e.g. DJANGO_SPEC="Django>=6.0,<6.1" for the Django 6 leg.
DJANGO_SPEC ?=
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test demo lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e ".[test,lint]" $(if $(DJANGO_SPEC),"$(DJANGO_SPEC)")
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) example_project/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check migtools tests bench example_project
	$(VENV)/bin/ruff format --check migtools
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-* build *.egg-info
