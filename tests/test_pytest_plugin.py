"""The pytest plugin, driven through pytester in subprocesses against the same PostgreSQL.

Each inner run gets its own test database name, so it never touches this session's.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent

INNER_TESTS = """
from migtools.testing import TestMigrations


class TestBackfill(TestMigrations):
    app = "ledger"
    migrate_from = "0004_entry_kind"
    migrate_to = "0005_backfill_entry_kind"

    def setup_before_migration(self, apps):
        Account = apps.get_model("ledger", "Account")
        Entry = apps.get_model("ledger", "Entry")
        self.entry = Entry.objects.create(account=Account.objects.create(name="a"),
                                          amount_cents=-1)

    def test_backfill(self):
        Entry = self.apps.get_model("ledger", "Entry")
        assert Entry.objects.get(pk=self.entry.pk).kind == "debit"


def test_function_style(migtools_migrator):
    apps = migtools_migrator.before("0004_entry_kind", app="ledger")
    Account = apps.get_model("ledger", "Account")
    Entry = apps.get_model("ledger", "Entry")
    entry = Entry.objects.create(account=Account.objects.create(name="a"), amount_cents=2)
    after = migtools_migrator.after("0005_backfill_entry_kind")
    assert after.get_model("ledger", "Entry").objects.get(pk=entry.pk).kind == "credit"


def test_plain():
    pass
"""


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An inner project: settings with a unique test database name; yields that name."""
    name = f"test_mtplugin_{uuid.uuid4().hex[:8]}"
    pytester.makepyfile(
        inner_settings=f"""
from tests.settings import *  # noqa: F403
DATABASES = {{"default": {{**DATABASES["default"], "TEST": {{"NAME": {name!r}}}}}}}
"""
    )
    pytester.makepyfile(test_inner=INNER_TESTS)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(pytester.path), str(REPO)]))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    # pytest-django exported this session's settings module; the inner run must use its own
    # (the environment variable outranks the ini file).
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    yield name
    _drop_everything(name)


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    return psycopg.connect(url, autocommit=True)


def _databases(test_db: str) -> list[str]:
    """The inner run's test database and every snapshot database derived from it."""
    import hashlib

    prefix = "mt_" + hashlib.sha1(test_db.encode()).hexdigest()[:8] + "_"
    with _admin() as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s",
            (test_db, prefix + "%"),
        ).fetchall()
    return sorted(str(row[0]) for row in rows)


def _drop_everything(test_db: str) -> None:
    with _admin() as conn:
        for name in _databases(test_db):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _ini(pytester: pytest.Pytester, extra: str = "") -> None:
    pytester.makeini(
        f"""
[pytest]
DJANGO_SETTINGS_MODULE = inner_settings
addopts = -p no:cacheprovider
django_find_project = false
{extra}
"""
    )


def test_runs_and_cleans_up(pytester: pytest.Pytester, inner: str) -> None:
    _ini(pytester)
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["migtools: migration snapshots built: 1, reused: 0"])
    assert _databases(inner) == []  # test database and snapshots gone without --reuse-db


def test_marker_selects_migration_tests(pytester: pytest.Pytester, inner: str) -> None:
    _ini(pytester)
    result = pytester.runpytest_subprocess("-q", "-m", "not migrations")
    result.assert_outcomes(passed=1, deselected=2)
    result = pytester.runpytest_subprocess("-q", "-m", "migrations")
    result.assert_outcomes(passed=2, deselected=1)


def test_skipped_under_nomigrations(pytester: pytest.Pytester, inner: str) -> None:
    _ini(pytester)
    result = pytester.runpytest_subprocess("-q", "-rs", "--nomigrations")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*pytest-django builds the test database without migrations (--nomigrations). "
            "Run `pytest --migrations` to enable migration tests.*"
        ]
    )


def test_ini_option_requires_explicit_migrations_flag(
    pytester: pytest.Pytester, inner: str
) -> None:
    _ini(pytester, "migtools_require_migrations_flag = true")
    result = pytester.runpytest_subprocess("-q", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*this project runs them only on request (migtools_require_migrations_flag = "
            "true). Run `pytest --migrations`*"
        ]
    )
    result = pytester.runpytest_subprocess("-q", "--migrations")
    result.assert_outcomes(passed=3)


def test_sentry_convention_nomigrations_in_addopts(pytester: pytest.Pytester, inner: str) -> None:
    pytester.makeini(
        """
[pytest]
DJANGO_SETTINGS_MODULE = inner_settings
addopts = -p no:cacheprovider --nomigrations
django_find_project = false
migtools_require_migrations_flag = true
"""
    )
    assert pytester.runpytest_subprocess("-q").parseoutcomes()["skipped"] == 2
    pytester.runpytest_subprocess("-q", "--migrations").assert_outcomes(passed=3)


def test_reuse_db_keeps_snapshots_and_create_db_rebuilds_them(
    pytester: pytest.Pytester, inner: str
) -> None:
    _ini(pytester)
    first = pytester.runpytest_subprocess("-q", "--reuse-db")
    first.assert_outcomes(passed=3)
    first.stdout.fnmatch_lines(["migtools: migration snapshots built: 1, reused: 0"])
    kept = _databases(inner)
    assert inner in kept
    # The test database and the snapshot at 0004, kept as the warm copy its tests ran on (every
    # test rolled back): no pristine template was needed, so none was copied.
    assert len(kept) == 2
    assert any(name.endswith("_w") for name in kept)

    second = pytester.runpytest_subprocess("-q", "--reuse-db")
    second.assert_outcomes(passed=3)
    second.stdout.fnmatch_lines(["migtools: migration snapshots built: 0, reused: 1"])
    assert _databases(inner) == kept

    third = pytester.runpytest_subprocess("-q", "--reuse-db", "--create-db")
    third.assert_outcomes(passed=3)
    third.stdout.fnmatch_lines(["migtools: migration snapshots built: 1, reused: 0"])

    # Without --reuse-db, the test database and the snapshots are dropped at the end.
    last = pytester.runpytest_subprocess("-q")
    last.assert_outcomes(passed=3)
    assert _databases(inner) == []


def test_graph_change_replaces_snapshots(pytester: pytest.Pytester, inner: str) -> None:
    _ini(pytester)
    pytester.runpytest_subprocess("-q", "--reuse-db").assert_outcomes(passed=3)
    before = set(_databases(inner))
    # Same migrations, one more (empty) migration at the end: a different graph.
    package = pytester.mkpydir("ledger_mig")
    source = REPO / "tests" / "testapps" / "ledger" / "migrations"
    for path in source.glob("0*.py"):
        (package / path.name).write_text(path.read_text())
    (package / "0008_noop.py").write_text(
        "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('ledger', '0007_account_closed')]\n"
        "    operations = []\n"
    )
    settings = pytester.path / "inner_settings.py"
    settings.write_text(settings.read_text() + '\nMIGRATION_MODULES = {"ledger": "ledger_mig"}\n')
    result = pytester.runpytest_subprocess("-q", "--reuse-db")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["migtools: migration snapshots built: 1, reused: 0"])
    after = set(_databases(inner))
    assert inner in after
    assert not (before - {inner}) & after  # the old graph's snapshots were dropped


XDIST_TESTS = '''
import hashlib
import os

from django.apps import apps as global_apps
from django.db import connections

from migtools.testing import TestMigrations


def _on_my_workers_copy(test_db):
    """The alias points at a snapshot copy derived from this worker's test database."""
    worker = os.environ["PYTEST_XDIST_WORKER"]
    assert test_db.endswith("_" + worker), test_db
    prefix = "mt_" + hashlib.sha1(test_db.encode()).hexdigest()[:8] + "_"
    assert connections["default"].settings_dict["NAME"].startswith(prefix)


class TestBackfill{n}(TestMigrations):
    app = "ledger"
    migrate_from = "0004_entry_kind"
    migrate_to = "0005_backfill_entry_kind"

    def setup_before_migration(self, apps):
        self.test_db = connections["default"].settings_dict["NAME"]
        Account = apps.get_model("ledger", "Account")
        Entry = apps.get_model("ledger", "Entry")
        assert not Entry.objects.exists()  # nothing from the other worker's tests
        self.entry = Entry.objects.create(account=Account.objects.create(name="a"),
                                          amount_cents=-1)

    def test_backfill(self):
        Entry = self.apps.get_model("ledger", "Entry")
        assert Entry.objects.get(pk=self.entry.pk).kind == "debit"

    def test_second_method(self):
        assert self.apps.get_model("ledger", "Entry").objects.count() == 1


def test_function_style_{n}(migtools_migrator):
    test_db = connections["default"].settings_dict["NAME"]
    apps = migtools_migrator.before("0002_currency", app="ledger")
    _on_my_workers_copy(test_db)
    Account = apps.get_model("ledger", "Account")
    Entry = apps.get_model("ledger", "Entry")
    entry = Entry.objects.create(account=Account.objects.create(name="a"), amount_cents=2)
    migtools_migrator.after("0005_backfill_entry_kind")
    migtools_migrator.reset()
    # Back on this worker's test database at head, the seeded currencies intact.
    assert connections["default"].settings_dict["NAME"] == test_db
    currency = global_apps.get_model("ledger", "Currency")
    assert sorted(currency.objects.values_list("code", flat=True)) == ["EUR", "USD"]
    assert not global_apps.get_model("ledger", "Entry").objects.filter(pk=entry.pk).exists()
'''


def test_snapshots_are_per_worker_under_xdist(pytester: pytest.Pytester, inner: str) -> None:
    """Two pytest-xdist workers run migration tests at the same targets at the same time:
    each builds and uses snapshots of its own test database, and both clean up."""
    pytest.importorskip("xdist")
    _ini(pytester)
    pytester.makepyfile(test_inner="")  # replaced by the two files below
    pytester.makepyfile(
        test_xdist_a=XDIST_TESTS.replace("{n}", "A"), test_xdist_b=XDIST_TESTS.replace("{n}", "B")
    )
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadfile", "-v")
    result.assert_outcomes(passed=6)
    workers = {
        line.split("]")[0].lstrip("[")
        for line in result.outlines
        if line.startswith("[gw") and "PASSED" in line
    }
    assert workers == {"gw0", "gw1"}, result.outlines
    for worker in ("gw0", "gw1"):
        assert _databases(f"{inner}_{worker}") == []  # test database and snapshots dropped
