"""Verification without a database (``migtools.verifier.offline``): ``verify_migrations``,
``sqlmigrate`` and makemigrations' findings with ``DATABASE_URL`` pointing at a closed
loopback port, or with no DATABASES at all, compared with the same commands on a real
PostgreSQL holding the same migrations applied."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.miniproject import MiniProject, Result, make_project
from tests.test_example_project import database_url  # noqa: F401  (fixture)
from tests.test_verify import MIGRATION_TEST, MIGRATIONS, _write_migrations

OFFLINE_LINE = "migtools: verified offline ("

# Migrations whose SQL carries literal parameters (client-side quoting on the way).
LITERALS = {
    "0001_initial": """\
        migrations.CreateModel("Tag", [
            ("id", models.BigAutoField(primary_key=True)),
            ("name", models.CharField(max_length=40)),
        ]),
    """,
    "0002_db_default_strings": """\
        migrations.AddField("tag", "label", models.TextField(db_default="it's a \\\\ label")),
        migrations.AddField("tag", "blob", models.BinaryField(db_default=b"\\x00\\xffab")),
        migrations.AddField("tag", "since", models.DateField(db_default=datetime.date(2020, 1, 2))),
        migrations.AddField("tag", "meta", models.JSONField(db_default={"k": "v'"})),
    """,
    "0003_checks": """\
        migrations.AddConstraint("tag", models.CheckConstraint(
            condition=models.Q(name__in=["a", "b'c", "ü"]), name="name_known")),
        migrations.AddConstraint("tag", models.CheckConstraint(
            condition=models.Q(since__gte=datetime.date(2000, 1, 1)), name="since_recent")),
    """,
    "0004_defaults": """\
        migrations.AddField("tag", "kind", models.CharField(max_length=5, default="x'y")),
        migrations.AddField("tag", "score", models.DecimalField(
            max_digits=5, decimal_places=2, null=True, default=decimal.Decimal("1.10"))),
    """,
    "0005_nulls": """\
        migrations.AddConstraint("tag", models.UniqueConstraint(
            fields=["kind"], name="kind_once", nulls_distinct=False)),
    """,
}

LITERAL_HEAD = """\
import datetime
import decimal

from django.db import migrations, models
from migtools import CheckedMigration


class Migration(CheckedMigration):
    is_post_deployment = False
    dependencies = [{deps}]

    operations = [
{ops}
    ]
"""

SETTINGS = (
    "INSTALLED_APPS += ['django.contrib.sites', 'allauth', 'allauth.account']\n"
    "SITE_ID = 1\n"
    "MIDDLEWARE = ['allauth.account.middleware.AccountMiddleware']\n"
    "MIGTOOLS_APPS = ['shop', 'lit']\n"
    "MIGTOOLS_LARGE_TABLES = ['shop_item', 'lit_tag']\n"
    "MIGTOOLS_MIGRATION_TEST_DIRS = ['tests']\n"
    "if os.environ.get('TEST_PG_VERSION'):\n"
    "    MIGTOOLS_PG_VERSION = int(os.environ['TEST_PG_VERSION'])\n"
    "if os.environ.get('TEST_PG_VERSION_TEXT'):\n"
    "    MIGTOOLS_PG_VERSION = os.environ['TEST_PG_VERSION_TEXT']\n"
    "if os.environ.get('TEST_NO_DATABASES'):\n"
    "    DATABASES = {}\n"
)

APPS = ("shop", "lit", "auth", "contenttypes", "sites", "account")


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(project: MiniProject, *args: str, **env: str) -> Result:
    full = {**os.environ, "PYTHONPATH": str(project.root), "PYTHONWARNINGS": "ignore", **env}
    full.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project.root,
        env=full,
        capture_output=True,
        text=True,
    )
    return Result(proc.stdout, proc.stderr, proc.returncode)


def _server_major() -> int:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        return conn.info.server_version // 10000


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> MiniProject:
    root = tmp_path_factory.mktemp("offline") / "proj"
    project = make_project(root, apps=("shop", "lit"), extra_settings=SETTINGS)
    (root / "tests").mkdir()
    (root / "tests" / "test_shop_migrations.py").write_text(MIGRATION_TEST)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    _write_migrations(project, 1)
    mdir = root / "lit" / "migrations"
    mdir.mkdir()
    (mdir / "__init__.py").write_text("")
    previous = None
    for name, ops in LITERALS.items():
        deps = f"('lit', '{previous}')" if previous else ""
        body = "\n".join(
            " " * 8 + line.strip() if line.strip() else "" for line in ops.splitlines()
        )
        (mdir / f"{name}.py").write_text(LITERAL_HEAD.format(deps=deps, ops=body))
        previous = name
    # The database as production holds it: the contrib apps and the first migrations applied.
    for target in (("shop", "0001"), ("lit", "0001"), ("auth",), ("sites",), ("account",)):
        result = project.manage("migrate", *target, "-v0")
        assert result.returncode == 0, result.err
    _write_migrations(project, len(MIGRATIONS))
    assert project.manage("migrations_lockfile").returncode == 0
    return project


@pytest.fixture(scope="module")
def offline_env() -> dict[str, str]:
    return {
        "DATABASE_URL": f"postgres://u:p@127.0.0.1:{_closed_port()}/x",
        "TEST_PG_VERSION": str(_server_major()),
    }


def _findings(result: Result) -> tuple[int, int, list[tuple[str, str, str, object]]]:
    data = json.loads(result.out)
    rows = sorted(
        (str(f["migration"]), str(f["rule"]), str(f["level"]), f["line"]) for f in data["findings"]
    )
    return result.returncode, int(data["migrations"]), rows


def _assert_offline_stderr(result: Result) -> None:
    assert "Traceback" not in result.err, result.err
    lines = [line for line in result.err.splitlines() if line.startswith(OFFLINE_LINE)]
    assert len(lines) == 1, result.err
    assert "unreachable" in lines[0] and "MIGTOOLS_LARGE_TABLES" in lines[0]


@pytest.mark.parametrize("app", (*APPS, None))
def test_verify_json_same_online_and_offline(
    project: MiniProject, offline_env: dict[str, str], app: str | None
) -> None:
    args = ("verify_migrations", *([app] if app else []), "--format", "json")
    online = project.manage(*args)
    assert "Traceback" not in online.err and OFFLINE_LINE not in online.err, online.err
    offline = _run(project, *args, **offline_env)
    _assert_offline_stderr(offline)
    assert _findings(offline) == _findings(online)
    assert _findings(online)[1] > 0


def test_offline_findings_are_the_expected_ones(
    project: MiniProject, offline_env: dict[str, str]
) -> None:
    """Not only equal to the online run: the shop corpus gives test_verify's expected rules
    offline, with exit code 1."""
    from tests.test_verify import EXPECTED

    result = _run(project, "verify_migrations", "shop", "--format", "json", **offline_env)
    assert result.returncode == 1
    got: dict[str, set[str]] = {name: set() for name in EXPECTED}
    for f in json.loads(result.out)["findings"]:
        got[str(f["migration"])].add(str(f["rule"]))
    assert got == EXPECTED


@pytest.mark.parametrize("name", sorted(LITERALS))
def test_sqlmigrate_same_sql_online_and_offline(
    project: MiniProject, offline_env: dict[str, str], name: str
) -> None:
    online = project.manage("sqlmigrate", "lit", name)
    offline = _run(project, "sqlmigrate", "lit", name, **offline_env)
    assert online.returncode == 0, online.err
    _assert_offline_stderr(offline)
    assert offline.out == online.out
    assert offline.returncode == online.returncode


def test_sqlmigrate_quotes_literals_client_side(
    project: MiniProject, offline_env: dict[str, str]
) -> None:
    out = _run(project, "sqlmigrate", "lit", "0002", **offline_env).out
    assert "DEFAULT  E'it''s a \\\\ label'" in out
    assert "DEFAULT '\\x00ff6162'::bytea" in out
    assert "DEFAULT '2020-01-02'::date" in out
    assert "DEFAULT '{\"k\": \"v''\"}'::jsonb" in out
    checks = _run(project, "sqlmigrate", "lit", "0003", **offline_env).out
    assert "IN ('a', 'b''c', 'ü')" in checks


@pytest.mark.parametrize(
    "target", [("shop", "0005"), ("shop", "0004"), ("lit", "0003"), ("shop", "0017")]
)
def test_sqlmigrate_check_exit_codes_equal(
    project: MiniProject, offline_env: dict[str, str], target: tuple[str, str]
) -> None:
    online = project.manage("sqlmigrate", *target, "--check")
    offline = _run(project, "sqlmigrate", *target, "--check", **offline_env)
    _assert_offline_stderr(offline)
    assert offline.returncode == online.returncode
    assert offline.out == online.out


def test_sqlmigrate_check_codes_are_real(project: MiniProject, offline_env: dict[str, str]) -> None:
    assert _run(project, "sqlmigrate", "shop", "0005", "--check", **offline_env).returncode == 1
    assert _run(project, "sqlmigrate", "shop", "0004", "--check", **offline_env).returncode == 0


def test_sqlmigrate_backwards_offline(project: MiniProject, offline_env: dict[str, str]) -> None:
    online = project.manage("sqlmigrate", "lit", "0003", "--backwards")
    offline = _run(project, "sqlmigrate", "lit", "0003", "--backwards", **offline_env)
    _assert_offline_stderr(offline)
    assert offline.returncode == online.returncode == 0, offline.err
    assert offline.out == online.out
    assert 'DROP CONSTRAINT "name_known"' in offline.out


def test_pg_version_setting_and_default(project: MiniProject, offline_env: dict[str, str]) -> None:
    """NULLS NOT DISTINCT needs PostgreSQL 15: Django writes it only when the server is 15+;
    offline, the version is MIGTOOLS_PG_VERSION, else the oldest one Django supports."""
    from django.db.backends.postgresql.features import DatabaseFeatures

    oldest = DatabaseFeatures.minimum_database_version[0]
    env = {**offline_env, "TEST_PG_VERSION": "15"}
    new = _run(project, "sqlmigrate", "lit", "0005", **env)
    assert "NULLS NOT DISTINCT" in new.out, new.out + new.err
    assert "PostgreSQL 15 assumed" in new.err
    env = {**offline_env, "TEST_PG_VERSION": ""}
    old = _run(project, "sqlmigrate", "lit", "0005", **env)
    assert f"PostgreSQL {oldest} assumed" in old.err
    if oldest < 15:
        assert "NULLS NOT DISTINCT" not in old.out


def test_bad_pg_version_is_one_line(project: MiniProject, offline_env: dict[str, str]) -> None:
    result = _run(project, "verify_migrations", **offline_env, TEST_PG_VERSION_TEXT="fifteen")
    # The settings system check refuses it before the command runs (no traceback).
    assert result.returncode == 1, result.err
    assert "Traceback" not in result.err
    assert "(migtools.E117) MIGTOOLS_PG_VERSION" in result.err
    assert "Write e.g. MIGTOOLS_PG_VERSION = 15." in result.err


def test_no_databases_setting(project: MiniProject, offline_env: dict[str, str]) -> None:
    online = project.manage("verify_migrations", "--format", "json")
    none = _run(
        project,
        "verify_migrations",
        "--format",
        "json",
        TEST_NO_DATABASES="1",
        TEST_PG_VERSION=offline_env["TEST_PG_VERSION"],
    )
    assert "Traceback" not in none.err, none.err
    assert "migtools: verified offline (no database configured)" in none.err
    assert _findings(none) == _findings(online)
    sql = _run(project, "sqlmigrate", "lit", "0002", TEST_NO_DATABASES="1")
    assert sql.returncode == 0, sql.err
    assert "DEFAULT '\\x00ff6162'::bytea" in sql.out


def test_unapplied_needs_the_database(project: MiniProject, offline_env: dict[str, str]) -> None:
    result = _run(project, "verify_migrations", "--unapplied", **offline_env)
    assert result.returncode == 1
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    (line,) = lines
    assert line.startswith("CommandError: --unapplied needs the database: database 'default'")
    assert "Connection refused" in line


def test_text_format_offline(project: MiniProject, offline_env: dict[str, str]) -> None:
    online = project.manage("verify_migrations", "shop", "0004")
    offline = _run(project, "verify_migrations", "shop", "0004", **offline_env)
    _assert_offline_stderr(offline)
    assert offline.returncode == online.returncode == 0
    assert offline.out == online.out


def test_makemigrations_findings_offline(tmp_path: Path, offline_env: dict[str, str]) -> None:
    project = make_project(tmp_path / "mk", extra_settings="MIGTOOLS_APPS = ['shop']\n")
    subprocess.run(["git", "init", "-q", "-b", "main", str(project.root)], check=True)
    first = _run(project, "makemigrations", "shop", "-n", "initial", **offline_env)
    assert first.returncode == 0, first.err
    project.add_model_field("shop", "qty = models.IntegerField(null=True, db_index=True)")
    before = project.snapshot()
    offline = _run(project, "makemigrations", "shop", "-n", "qty", **offline_env)
    # Django's backend builds the index without CONCURRENTLY: refused before writing.
    assert offline.returncode == 1, offline.err
    assert "Traceback" not in offline.err
    assert project.snapshot() == before
    offline_lines = offline.err.splitlines()
    assert sum(line.startswith(OFFLINE_LINE) for line in offline_lines) == 1
    findings = [line for line in offline_lines if line.startswith("  - ")]
    assert any("[index-not-concurrent]" in line for line in findings), offline.err
    # The same findings with the database up.
    online = project.manage("makemigrations", "shop", "-n", "qty")
    assert online.returncode == 1, online.err
    assert OFFLINE_LINE not in online.err
    assert [line for line in online.err.splitlines() if line.startswith("  - ")] == findings
    assert project.snapshot() == before


def test_example_project_same_online_and_offline(database_url: str) -> None:  # noqa: F811
    """The example project (migtools' own backend): on its migrated database and with the
    database at a closed port, the same findings and exit codes, and the same SQL."""
    from tests.test_example_project import EXAMPLE, run_manage

    migrated = run_manage("migrate", "--no-input", database_url=database_url)
    assert migrated.returncode == 0, migrated.stderr
    closed = f"postgres://u:p@127.0.0.1:{_closed_port()}/x"
    for app in (None, "catalog", "customers", "orders"):
        args = ("verify_migrations", *([app] if app else []), "--format", "json")
        online = run_manage(*args, database_url=database_url)
        offline = run_manage(*args, database_url=closed)
        for run in (online, offline):
            assert "Traceback" not in run.stderr, run.stderr
        assert OFFLINE_LINE in offline.stderr and OFFLINE_LINE not in online.stderr
        on = Result(online.stdout, online.stderr, online.returncode)
        off = Result(offline.stdout, offline.stderr, offline.returncode)
        assert _findings(off) == _findings(on), app
    # Every migration after the initial ones (their defaults, CHECK values, index, backfill).
    for path in sorted(EXAMPLE.glob("*/migrations/000[2-9]_*.py")):
        app, name = path.parent.parent.name, path.stem
        online = run_manage("sqlmigrate", app, name, "--check", database_url=database_url)
        offline = run_manage("sqlmigrate", app, name, "--check", database_url=closed)
        assert online.returncode == 0, online.stderr
        assert (offline.returncode, offline.stdout) == (online.returncode, online.stdout), name
