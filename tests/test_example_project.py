"""example_project/ stays a working project: its graph loads, its models match its
migrations, its lockfile is true, its whole history applies (and unapplies) on PostgreSQL under
migtools' safe backend, and its own migration tests pass.

Everything runs in subprocesses with the example project's own settings, as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"
APPS = ("catalog", "customers", "orders")
SQUASHED = ("catalog", "0001_squashed_0003_product_price_gte_0")

# Run as `python -c LOADER_SCRIPT catalog customers orders`; prints the graph as JSON.
LOADER_SCRIPT = """
import json
import sys

import django

django.setup()

from django.conf import settings
from django.db.migrations.loader import MigrationLoader

from migtools import CheckedMigration

apps = set(sys.argv[1:])
loader = MigrationLoader(None, ignore_no_migrations=True)
leaves = {}
for app, name in sorted(loader.graph.leaf_nodes()):
    leaves.setdefault(app, []).append(name)
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "leaves": leaves,
    "replacements": sorted([list(key) for key in loader.replacements]),
    "orders_initial_parents": sorted(
        [list(p.key) for p in loader.graph.node_map[("orders", "0001_initial")].parents]
    ),
    "unchecked": sorted(
        f"{app}.{name}"
        for (app, name), migration in loader.disk_migrations.items()
        if app in apps
        and not (
            isinstance(migration, CheckedMigration) and type(migration).states_post_deployment()
        )
    ),
}))
"""


def run_manage(
    *args: str,
    database_url: str | None,
    code: str | None = None,
    pytest: bool = False,
    cwd: Path = EXAMPLE,
) -> subprocess.CompletedProcess[str]:
    """``manage.py ARGS``, ``python -c CODE ARGS`` or (``pytest=True``) the example project's
    own pytest run, in a subprocess with the example project's settings."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env["DJANGO_SETTINGS_MODULE"] = "shop.settings"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if pytest:
        # example_project/pytest.ini (settings, no cache provider) is the config, not ours.
        program = ["-m", "pytest", "-v", "-p", "no:cacheprovider", "-c", "pytest.ini"]
    else:
        program = ["-c", code] if code else ["manage.py"]
    return subprocess.run(
        [sys.executable, *program, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh, empty database on the test session's PostgreSQL server, dropped afterwards."""
    server_url = os.environ["DATABASE_URL"]  # set by tests/settings.py
    name = f"migtools_example_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def lockfile_entries() -> dict[str, str]:
    entries = {}
    for line in (EXAMPLE / "migrations_lockfile.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            label, _, name = line.partition(":")
            entries[label.strip()] = name.strip()
    return entries


def user_tables(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


def test_loader_finds_one_leaf_per_app_and_the_lockfile_names_it(database_url: str) -> None:
    proc = run_manage(*APPS, database_url=database_url, code=LOADER_SCRIPT)
    assert proc.returncode == 0, proc.stderr
    graph = json.loads(proc.stdout)

    assert graph["engine"] == "migtools.db.backends.postgresql"
    leaves = {app: names for app, names in graph["leaves"].items() if app in APPS}
    assert leaves == {
        "catalog": ["0004_product_description"],
        "customers": ["0003_backfill_display_name"],
        "orders": ["0003_order_status_created_idx"],
    }
    assert lockfile_entries() == {app: names[0] for app, names in leaves.items()}

    # The squash stands in for what it replaces; the replaced files are kept on purpose.
    assert graph["replacements"] == [list(SQUASHED)]
    for name in ("0001_initial", "0002_product_is_active", "0003_product_price_gte_0"):
        assert (EXAMPLE / "catalog" / "migrations" / f"{name}.py").is_file()
    # orders.0001 was written against catalog.0001_initial; the loader points it at the squash.
    assert graph["orders_initial_parents"] == [list(SQUASHED), ["customers", "0001_initial"]]
    assert graph["unchecked"] == []


def test_models_match_the_migrations(database_url: str) -> None:
    proc = run_manage("makemigrations", "--check", "--dry-run", database_url=database_url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No changes detected" in proc.stdout


def test_history_applies_from_zero_and_unapplies(database_url: str) -> None:
    proc = run_manage("migrate", "--no-input", database_url=database_url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Applying {SQUASHED[0]}.{SQUASHED[1]}... OK" in proc.stdout
    assert "Applying customers.0003_backfill_display_name... OK" in proc.stdout
    assert {"catalog_product", "customers_customer", "orders_orderline"} <= user_tables(
        database_url
    )

    # Every migration is reversible, the RunPython backfill included.
    for app in ("orders", "customers", "catalog"):
        proc = run_manage("migrate", app, "zero", "--no-input", database_url=database_url)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not {t for t in user_tables(database_url) if t.split("_")[0] in APPS}


def test_history_applies_through_the_replaced_migrations_too(
    database_url: str, tmp_path: Path
) -> None:
    """A database that applied catalog 0001-0002 before the squash existed applies 0003 on its
    own: under the safe backend it must not be refused (it adds a CHECK to an existing table)."""
    copy = tmp_path / "example"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", "demo.py"))
    (copy / "catalog" / "migrations" / f"{SQUASHED[1]}.py").unlink()
    later = copy / "catalog" / "migrations" / "0004_product_description.py"
    later.write_text(later.read_text().replace(SQUASHED[1], "0003_product_price_gte_0"))
    proc = run_manage("migrate", "--no-input", database_url=database_url, cwd=copy)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Applying catalog.0003_product_price_gte_0... OK" in proc.stdout


def test_the_example_projects_migration_tests_pass(database_url: str) -> None:
    """customers/tests/ holds a TestMigrations test for the RunPython backfill; it runs with the
    example project's own pytest.ini (its settings), as a user of the project would run it."""
    proc = run_manage(database_url=database_url, code=None, pytest=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_0003_backfill_display_name.py::BackfillDisplayNameTest" in proc.stdout
    assert "1 passed" in proc.stdout


def test_settings_without_database_url_fail_clearly() -> None:
    proc = run_manage("check", database_url=None)
    assert proc.returncode != 0
    assert "DATABASE_URL is not set" in proc.stderr


def test_every_migration_verifies_under_the_safe_backend(database_url: str) -> None:
    # migtools' backend renders some deferred SQL as several statements; the verifier must
    # read them (a full run over a model with a ForeignKey once crashed here).
    proc = run_manage("migrate", "--no-input", database_url=database_url)
    assert proc.returncode == 0, proc.stderr
    proc = run_manage("verify_migrations", database_url=database_url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "migrations verified" in proc.stdout
