"""Several databases, as Sentry runs them: the router project of ``tests/multidb`` driven
through ``manage.py``-style subprocesses, on one server with one database per alias."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from migtools.safety.lock import ADVISORY_LOCK_NAME
from tests.safety_helpers import query, server_conninfo

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    out: str
    err: str
    returncode: int


@dataclass
class Project:
    prefix: str

    def db(self, alias: str) -> str:
        return f"{self.prefix}_{alias}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "MULTIDB_PREFIX": self.prefix, "PYTHONWARNINGS": "ignore", **extra}
        env["DJANGO_SETTINGS_MODULE"] = "tests.multidb.settings"
        env["PYTHONPATH"] = str(ROOT)
        return env

    def manage(self, *args: str, **extra: str) -> Run:
        proc = subprocess.run(
            [sys.executable, "-m", "django", *args],
            cwd=ROOT,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=300,
        )
        return Run(proc.stdout, proc.stderr, proc.returncode)

    def query(self, alias: str, sql: str) -> list[tuple[object, ...]]:
        return query(self.db(alias), sql)

    def table(self, alias: str, table: str) -> bool:
        return self.query(alias, f"SELECT to_regclass('{table}') IS NOT NULL")[0][0] is True

    def applied(self, alias: str, app: str) -> set[str]:
        rows = self.query(alias, f"SELECT name FROM django_migrations WHERE app = '{app}'")
        return {str(name) for (name,) in rows}


@pytest.fixture
def project() -> Iterator[Project]:
    prefix = f"mt_multi_{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}_default", f"{prefix}_control"]
    with psycopg.connect(server_conninfo(), autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    yield Project(prefix)
    with psycopg.connect(server_conninfo(), autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrate_per_alias_applies_only_what_the_router_sends_there(project: Project) -> None:
    for alias in ("default", "control"):
        result = project.manage("migrate", "--database", alias)
        assert result.returncode == 0, result.err
    assert project.table("default", "cell_item")
    assert not project.table("default", "cell_region")  # routed to control by model
    assert not project.table("default", "control_account")
    assert project.table("control", "cell_region")
    assert project.table("control", "control_account")
    assert not project.table("control", "cell_item")
    # RunPython with hints={"silo": "control"} ran on control only.
    assert project.query("control", "SELECT code FROM cell_region ORDER BY code") == [
        ("eu",),
        ("us",),
    ]
    # Every migration is recorded on both databases; each ran only its own operations there.
    for app in ("cell", "control"):
        assert project.applied("default", app) == project.applied("control", app)
        assert len(project.applied("control", app)) == {"cell": 3, "control": 5}[app]
    # cell.0003: the AddField on control's cell_region, the index on default's cell_item.
    assert ("label",) in project.query(
        "control",
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'cell_region'",
    )
    indexes = "SELECT indexname FROM pg_indexes WHERE indexname = 'cell_item_name_idx'"
    assert project.query("default", indexes) == [("cell_item_name_idx",)]
    assert project.query("control", indexes) == []
    # control's RunBackfill and the two-phase deletion ran on control only.
    assert project.table("control", "migtools_backfill")
    assert not project.table("default", "migtools_backfill")
    assert not project.table("control", "control_oldaudit")
    assert not project.table("default", "control_oldaudit")


def test_the_migrate_lock_is_per_database(project: Project) -> None:
    """A deploy holding default's migrate lock does not hold up control's migrate; default's
    waits for it and says so."""
    digest = hashlib.sha256(f"{ADVISORY_LOCK_NAME}:{project.db('default')}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)  # migtools.safety.lock's key
    with psycopg.connect(server_conninfo(dbname=project.db("default")), autocommit=True) as held:
        held.execute("SELECT pg_advisory_lock(%s)", (key,))
        control = project.manage("migrate", "--database", "control")
        assert control.returncode == 0, control.err
        assert "Another migrate is running" not in control.err
        waiting = subprocess.Popen(
            [sys.executable, "-m", "django", "migrate", "--database", "default"],
            cwd=ROOT,
            env=project.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert waiting.stderr is not None
        first = waiting.stderr.readline()
        assert "Another migrate is running on this database" in first, first
        assert waiting.poll() is None
        assert not project.table("default", "cell_item")
        held.execute("SELECT pg_advisory_unlock(%s)", (key,))
    _out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert project.table("default", "cell_item")


def test_a_migration_unsafe_only_on_default_refuses_only_there(project: Project) -> None:
    for alias in ("default", "control"):
        result = project.manage("migrate", "cell", "0002", "--database", alias)
        assert result.returncode == 0, result.err
    # cell.0003 adds a column on control (safe) and builds an index on default's existing
    # cell_item without CONCURRENTLY: only default's migrate refuses.
    refused = project.manage("migrate", "cell", "--database", "default")
    assert refused.returncode == 1
    assert "on database 'default'" in refused.err
    assert "[index-not-concurrent]" in refused.err
    assert "0003_region_label_item_name_idx" not in project.applied("default", "cell")
    applied = project.manage("migrate", "cell", "--database", "control")
    assert applied.returncode == 0, applied.err
    assert "0003_region_label_item_name_idx" in project.applied("control", "cell")
    columns = project.query(
        "control",
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'cell_region'",
    )
    assert ("label",) in columns
    # --plan on control: nothing to say about default's index.
    plan = project.manage("migrate", "cell", "--database", "control", "--plan")
    assert "index-not-concurrent" not in plan.out


def test_pre_deploy_per_alias(project: Project) -> None:
    for alias in ("default", "control"):
        result = project.manage("migrate", "--pre-deploy", "--database", alias)
        assert result.returncode == 0, result.err
    # control's post-deployment backfill (and what depends on it) waits; default has none.
    control = project.manage("migrate", "--pre-deploy", "--database", "control")
    assert "control.0002_backfill_plan (post-deployment)" in control.out
    assert project.applied("control", "control") == {"0001_initial"}
    assert project.applied("default", "control") == {"0001_initial"}  # recorded, nothing run
    assert not project.table("default", "control_account")


def _seed_accounts(project: Project, n: int) -> None:
    project.query(
        "control",
        "INSERT INTO control_account (email) "
        f"SELECT 'a' || g || '@example.com' FROM generate_series(1, {n}) g",
    )


def test_backfill_on_a_control_model_runs_there_and_resumes_there_after_sigkill(
    project: Project,
) -> None:
    for alias in ("default", "control"):
        result = project.manage("migrate", "control", "0001", "--database", alias)
        assert result.returncode == 0, result.err
    _seed_accounts(project, 2000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "django", "migrate", "control", "--database", "control"],
        cwd=ROOT,
        env=project.env(MULTIDB_BACKFILL_SLEEP="0.02"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if project.table("control", "migtools_backfill"):
                rows = project.query(
                    "control", "SELECT coalesce(max(rows), 0) FROM migtools_backfill"
                )
                if int(str(rows[0][0])) >= 400:
                    break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    visits = dict(
        project.query("control", "SELECT visits, count(*) FROM control_account GROUP BY 1")
    )
    assert set(visits) == {0, 1}, visits  # killed midway; nothing visited twice
    ((name, state, rows),) = project.query(
        "control", "SELECT name, state, rows FROM migtools_backfill"
    )
    assert (name, state) == ("control.0002_backfill_plan", "running")
    assert visits[1] == rows  # its progress lives on control, with the committed batches
    assert not project.table("default", "migtools_backfill")  # nothing on default
    result = project.manage("migrate", "control", "--database", "control")
    assert result.returncode == 0, result.err
    assert project.query("control", "SELECT visits, count(*) FROM control_account GROUP BY 1") == [
        (1, 2000)
    ]
    assert project.query("control", "SELECT state, rows FROM migtools_backfill") == [("done", 2000)]
    # On default the router skips the backfill: migrate records it, runs nothing.
    result = project.manage("migrate", "control", "--database", "default")
    assert result.returncode == 0, result.err
    assert not project.table("default", "migtools_backfill")
    listed = project.manage("backfills", "--database", "control")
    assert "control.0002_backfill_plan" in listed.out and "done" in listed.out


def test_tasks_runner_claims_the_ranges_on_the_models_database(project: Project) -> None:
    for alias in ("default", "control"):
        result = project.manage("migrate", "control", "0001", "--database", alias)
        assert result.returncode == 0, result.err
    _seed_accounts(project, 120)
    for alias in ("default", "control"):
        result = project.manage(
            "migrate", "control", "0002", "--database", alias, MULTIDB_RUNNER="tasks"
        )
        assert result.returncode == 0, result.err
    assert project.query("control", "SELECT runner, state FROM migtools_backfill") == [
        ("tasks", "done")
    ]
    ranges = project.query(
        "control", "SELECT state, count(*) FROM migtools_backfill_range GROUP BY 1"
    )
    assert ranges == [("done", 3)]  # 120 rows in ranges of 50, claimed and done on control
    assert project.query("control", "SELECT DISTINCT visits FROM control_account") == [(1,)]
    assert not project.table("default", "migtools_backfill")


def test_delete_phase_drops_the_control_table_on_control_and_nowhere_else(
    project: Project,
) -> None:
    for alias in ("default", "control"):
        result = project.manage("migrate", "control", "0003", "--database", alias)
        assert result.returncode == 0, result.err
    assert project.table("control", "control_oldaudit")  # pending: the table stays
    # A table of that name on default too: the DELETE phase must not touch it.
    project.query("default", "CREATE TABLE control_oldaudit (id bigint)")
    for alias in ("default", "control"):
        result = project.manage("migrate", "control", "--database", alias)
        assert result.returncode == 0, result.err
        assert "0004_delete_oldaudit" in project.applied(alias, "control")
    assert not project.table("control", "control_oldaudit")
    assert project.table("default", "control_oldaudit")


def test_delete_phase_of_an_unassigned_table_fails_before_anything_runs(
    project: Project,
) -> None:
    result = project.manage("migrate", "control", "0001", "--database", "control")
    assert result.returncode == 0, result.err
    result = project.manage(
        "migrate", "control", "--database", "control", MULTIDB_FORGET_HISTORY="1"
    )
    assert result.returncode == 1
    assert "Cannot tell which database holds table 'control_oldaudit'" in result.err
    assert "Traceback" not in result.err
    assert project.applied("control", "control") == {"0001_initial"}  # nothing ran
    assert project.table("control", "control_oldaudit")


def _findings(run: Run) -> set[tuple[str, str, str, object]]:
    data = json.loads(run.out)
    return {(f["rule"], f["app_label"], f["migration"], f["database"]) for f in data["findings"]}


def test_verify_migrations_reports_each_finding_with_its_database(project: Project) -> None:
    for alias in ("default", "control"):
        result = project.manage("migrate", "cell", "0002", "--database", alias)
        assert result.returncode == 0, result.err
    every = project.manage("verify_migrations", "cell", "--unapplied", "--format", "json")
    assert every.returncode == 1, every.err
    found = _findings(every)
    assert ("index-not-concurrent", "cell", "0003_region_label_item_name_idx", "default") in found
    assert not any(db == "control" and rule == "index-not-concurrent" for rule, _a, _m, db in found)
    control = project.manage(
        "verify_migrations", "cell", "--unapplied", "--database", "control", "--format", "json"
    )
    assert control.returncode == 0, control.out  # the unsafe index does not run there
    text = project.manage("verify_migrations", "cell", "--unapplied")
    assert (
        "[index-not-concurrent] cell.0003_region_label_item_name_idx (database 'default')"
        in text.out
    )
    # The hint rule: SafeRunSQL without hints, reported on the database it runs on.
    full = project.manage("verify_migrations", "cell", "--format", "json")
    assert ("run-without-hints", "cell", "0002_seed_regions", "default") in _findings(full)
    # The RunPython with hints={"silo": "control"} is not flagged.
    assert all(
        f["operation_index"] != 0
        for f in json.loads(full.out)["findings"]
        if f["rule"] == "run-without-hints"
    )
    # sqlmigrate per alias: the router decides what each database runs.
    on_control = project.manage("sqlmigrate", "cell", "0003", "--database", "control")
    assert 'ADD COLUMN "label"' in on_control.out
    assert "CREATE INDEX" not in on_control.out
    on_default = project.manage("sqlmigrate", "cell", "0003", "--database", "default")
    assert "CREATE INDEX" in on_default.out
    assert "-- migtools: index-not-concurrent (database 'default'):" in on_default.out


def test_verify_offline_gives_the_same_findings_per_database(project: Project) -> None:
    online = project.manage("verify_migrations", "--format", "json")
    offline = project.manage(
        "verify_migrations", "--format", "json", MULTIDB_PREFIX="mt_multi_absent_" + project.prefix
    )
    assert "offline" in offline.err.lower() or "not reachable" in offline.err.lower(), offline.err
    assert _findings(offline) == _findings(online)
    assert ("run-without-hints", "control", "0005_touch_accounts", "control") in _findings(online)
    assert {db for *_x, db in _findings(online)} == {"default", "control"}
    # The text lists the same findings, each with its database, online and offline.
    online_text = project.manage("verify_migrations")
    offline_text = project.manage(
        "verify_migrations", MULTIDB_PREFIX="mt_multi_absent_" + project.prefix
    )
    assert offline_text.out == online_text.out
    assert offline_text.returncode == online_text.returncode
    assert "[run-without-hints] control.0005_touch_accounts (database 'control')" in online_text.out
    assert "[run-without-hints] cell.0002_seed_regions (database 'default')" in online_text.out


def _pytest(project: Project, connection: str) -> Run:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/multidb/migration_tests.py",
            "-q",
            "-p",
            "no:xdist",
            "--ds",
            "tests.multidb.settings",
        ],
        cwd=ROOT,
        env=project.env(MULTIDB_TEST_CONNECTION=connection),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Run(proc.stdout, proc.stderr, proc.returncode)


def test_migration_test_on_the_tables_database_passes_and_elsewhere_names_it(
    project: Project,
) -> None:
    passed = _pytest(project, "control")
    assert passed.returncode == 0, passed.out[-3000:] + passed.err[-2000:]
    assert "2 passed" in passed.out
    failed = _pytest(project, "default")
    assert failed.returncode == 1, failed.out[-3000:]
    assert (
        "TestBackfillPlan: connection = 'default', but control.0002_backfill_plan runs on "
        "'control' (where the router puts its tables), not on 'default': set connection = "
        "'control'." in failed.out
    ), failed.out[-3000:]
    assert "2 failed" in failed.out  # the fixture refuses the same way
    assert "migtools_migrator: connection = 'default', but control.0002_backfill_plan" in failed.out


LARGE_INDEX = "index-on-large-table-not-post-deployment"
LARGE_WRITE = "run-python-on-large-table"


def test_offline_verification_uses_each_databases_recorded_sizes(
    project: Project, tmp_path: Path
) -> None:
    """cell_item is large on default, cell_region (routed to control) on control: recorded per
    alias by ``table_sizes --write --database``, the offline verifier judges each database
    with its own section and finds what the online run finds."""
    sizes_file = tmp_path / "migrations_table_sizes.txt"
    env = {"MULTIDB_LARGE_TABLE_ROWS": "100", "MULTIDB_TABLE_SIZES": str(sizes_file)}
    absent = {**env, "MULTIDB_PREFIX": "mt_multi_absent_" + project.prefix}
    for alias in ("default", "control"):
        result = project.manage("migrate", "cell", "0002", "--database", alias)
        assert result.returncode == 0, result.err
    project.query(
        "default", "INSERT INTO cell_item (name) SELECT 'i' || g FROM generate_series(1, 500) g"
    )
    project.query("default", "ANALYZE cell_item")
    project.query(
        "control", "INSERT INTO cell_region (code) SELECT 'r' || g FROM generate_series(1, 500) g"
    )
    project.query("control", "ANALYZE cell_region")
    for alias, large in (("default", "cell_item"), ("control", "cell_region")):
        written = project.manage("table_sizes", "--write", "--database", alias, **env)
        assert written.returncode == 0, written.err
        assert f"[{alias}]" in written.out and f"large: {large}" in written.out, written.out
    text = sizes_file.read_text()
    control_section = text[text.index("[control]") : text.index("[default]")]
    assert "cell_region: 502" in control_section and "cell_item" not in control_section
    assert "\ncell_item: 500\n" in text[text.index("[default]") :]

    def sized(run: Run) -> set[tuple[str, str, str, object]]:
        return {f for f in _findings(run) if f[0] in (LARGE_INDEX, LARGE_WRITE)}

    index_on_default = (LARGE_INDEX, "cell", "0003_region_label_item_name_idx", "default")
    write_on_control = (LARGE_WRITE, "cell", "0002_seed_regions", "control")
    expected = {
        (): {index_on_default, write_on_control},
        ("--database", "control"): {write_on_control},
        ("--database", "default"): {index_on_default},
    }
    for extra, findings in expected.items():
        online = project.manage("verify_migrations", "cell", *extra, "--format", "json", **env)
        offline = project.manage("verify_migrations", "cell", *extra, "--format", "json", **absent)
        assert sized(online) == findings, (extra, online.out)
        assert "verified offline" in offline.err, offline.err
        assert _findings(offline) == _findings(online), (extra, offline.err)
        assert offline.returncode == online.returncode
    on_control = project.manage("verify_migrations", "cell", "--database", "control", **absent)
    notice = [line for line in on_control.err.splitlines() if "verified offline" in line]
    assert len(notice) == 1, on_control.err
    assert "[control] recorded" in notice[0] and "large: cell_region" in notice[0]

    # Each database reads its own section, not the union: swapped, neither finding remains
    # (the index does not run on control, the RunPython does not run on default).
    swapped = text.replace("[default]", "[swap]").replace("[control]", "[default]")
    sizes_file.write_text(swapped.replace("[swap]", "[control]"))
    assert sized(project.manage("verify_migrations", "cell", "--format", "json", **absent)) == set()
