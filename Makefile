# `make demo` and `make test` each build .venv on demand from $(PYTHON); nothing else is needed
# on a machine that has the PostgreSQL server binaries (or a DATABASE_URL).
PYTHON ?= python3
VENV ?= .venv
# Extra pip requirement, e.g. DJANGO_SPEC="Django>=6.0,<6.1" for the Django 6 leg.
DJANGO_SPEC ?=
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The fast subset CI runs on the middle Django versions (full suite on the oldest and newest).
FAST_TESTS ?= tests/test_lockfile.py tests/test_graph.py tests/test_parsecache.py \
	tests/test_cli.py tests/test_report.py tests/test_rules.py tests/test_writer.py \
	tests/test_autodetector.py tests/test_rewrite.py tests/test_migrations_lockfile.py \
	tests/test_makemigrations.py tests/test_packaging.py

.PHONY: venv test test-fast test-large django-suite demo lint bench dist clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e ".[test,lint]" $(if $(DJANGO_SPEC),"$(DJANGO_SPEC)")
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest $(FAST_TESTS) $(PYTEST_ARGS)

# The 1,000-migration real-world-shaped project (tests marked `large`; skipped by `make test`).
test-large: $(STAMP)
	$(PY) -m pytest tests/test_large_project.py -m large $(PYTEST_ARGS)

# Django's own tests (migrations, schema, backends, ...) on Django's backend and on migtools':
# every test's outcome must be the same (downloads the installed Django's sdist once).
django-suite: $(STAMP)
	$(PY) tests/django_suite/run.py $(DJANGO_SUITE_ARGS)

demo: $(STAMP)
	$(PY) example_project/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check migtools tests bench example_project
	$(VENV)/bin/ruff format --check migtools tests bench example_project
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

# Wheel and sdist into dist/ (what a release uploads; tests/test_packaging.py checks both).
dist: $(STAMP)
	$(PY) -m build --outdir dist .

clean:
	rm -rf $(VENV) .venv-* build dist *.egg-info
