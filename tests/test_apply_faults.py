"""Faults while ``migrate`` runs, on a real PostgreSQL and a table large enough that ``CREATE
INDEX CONCURRENTLY`` takes seconds: a lock timeout in the middle of an index build, a REINDEX
that piles up ``_ccnew`` copies, two deploys at once, a statement timeout in a data migration,
a backend terminated and a server stopped mid-run."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.pgserver import ThrowawayServer
from tests.safety_helpers import INITIAL, connect, migration, query, safe_project

FIRST = [("shop", "0001_initial")]
BIG_ROWS = 3_000_000
INDEX = 'migrations.AddIndex("item", models.Index(fields=["name"], name="item_name_ix")),'
INVALID = (
    "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE i.indrelid = 'shop_item'::regclass AND NOT i.indisvalid ORDER BY 1"
)
VALID_IX = "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass('item_name_ix')"


def _project(tmp_path: Path, extra: str = "", rows: int = BIG_ROWS) -> tuple[Any, str]:
    proj, db = safe_project(tmp_path / "p", extra=extra)
    migration(proj, "0001_initial", [], INITIAL)
    result = proj.manage("migrate", "shop", "-v", "0")
    assert result.returncode == 0, result.err
    if rows:
        query(
            db,
            "INSERT INTO shop_item (name) SELECT 'n' || mod(g, 100000) "
            f"FROM generate_series(1, {rows}) g",
        )
    return proj, db


def _popen(proj: Any, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(proj.root), "PYTHONWARNINGS": "ignore"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=proj.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(
    db: str, sql: str, proc: subprocess.Popen[str], timeout: float = 60.0
) -> list[tuple[Any, ...]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"migrate ended ({proc.returncode}) first:\n{out}{err}")
        rows = query(db, sql)
        if rows:
            return rows
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {sql}")


BUILDING = (
    "SELECT pid FROM pg_stat_progress_create_index p JOIN pg_database d ON d.oid = p.datid "
    "WHERE d.datname = current_database() AND p.phase LIKE 'building index%%'"
)


def _writer(
    db: str, seconds: float, ready: threading.Event, stop: threading.Event | None = None
) -> None:
    """A transaction that wrote to the table and stays open (``seconds``, or until ``stop``):
    a concurrent index build waits for it (in lock_timeout) before it can validate."""
    with connect(db) as conn, conn.transaction():
        conn.execute("INSERT INTO shop_item (name) VALUES ('w')")
        ready.set()
        (stop or threading.Event()).wait(seconds)


def test_index_build_timed_out_after_building_is_dropped_and_built_again(tmp_path: Path) -> None:
    """The build works for seconds, then times out waiting for a writer: the INVALID index it
    left is dropped before the retry (no DuplicateTable), and the retry builds a valid one."""
    proj, db = _project(
        tmp_path,
        extra='MIGTOOLS_LOCK_TIMEOUT = "300ms"\nMIGTOOLS_LOCK_RETRIES = 8\n'
        "MIGTOOLS_LOCK_RETRY_DELAY = '200ms'",
    )
    migration(proj, "0002_index", FIRST, INDEX, atomic=False, post=True)
    proc = _popen(proj, "migrate", "shop")
    _wait_for(db, BUILDING, proc)
    ready, stop = threading.Event(), threading.Event()
    writer = threading.Thread(target=_writer, args=(db, 300.0, ready, stop))
    writer.start()
    ready.wait(10)
    # The writer stays until the build, done, timed out waiting for it.
    assert proc.stderr is not None
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if "retrying the statement" in line:
                break
    finally:
        stop.set()
        writer.join()
    out, err = proc.communicate(timeout=300)
    err = "".join(seen) + err
    assert proc.returncode == 0, out + err
    assert "retrying the statement" in err
    assert 'dropped INVALID index "public"."item_name_ix"' in err
    assert "Traceback" not in err and "DuplicateTable" not in err
    assert query(db, INVALID) == []
    assert query(db, VALID_IX) == [(True,)]
    assert query(db, "SELECT count(*) FROM django_migrations WHERE name = '0002_index'") == [(1,)]


def test_index_build_gives_up_and_says_truly_what_is_left(tmp_path: Path) -> None:
    """A writer that never lets go: the retries give up; the INVALID index cannot be dropped
    either (DROP INDEX CONCURRENTLY waits for the same writer), and the message says so; the
    next migrate drops it and builds the index."""
    proj, db = _project(
        tmp_path,
        extra='MIGTOOLS_LOCK_TIMEOUT = "200ms"\nMIGTOOLS_LOCK_RETRIES = 2\n'
        "MIGTOOLS_LOCK_RETRY_DELAY = '100ms'",
    )
    migration(proj, "0002_index", FIRST, INDEX, atomic=False, post=True)
    proc = _popen(proj, "migrate", "shop")
    _wait_for(db, BUILDING, proc)
    ready, stop = threading.Event(), threading.Event()
    writer = threading.Thread(target=_writer, args=(db, 120.0, ready, stop))
    writer.start()
    ready.wait(10)
    try:
        out, err = proc.communicate(timeout=300)
        left = query(db, INVALID)
    finally:
        stop.set()
        writer.join()
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err
    assert "tried 3 times with backoff and jitter" in err
    assert 'INVALID index(es) "public"."item_name_ix"' in err
    assert "the next migrate drops them before building again" in err
    assert "Nothing was left half-done" not in err
    assert left == [("item_name_ix",)]  # what the message said
    # The writer went away; the re-run drops the leftover first and builds it.
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.err
    assert 'dropped INVALID index "public"."item_name_ix"' in result.err
    assert query(db, INVALID) == []
    assert query(db, VALID_IX) == [(True,)]


REINDEX = 'SafeRunSQL("REINDEX INDEX CONCURRENTLY item_name_ix", migrations.RunSQL.noop),'


def _indexed_project(tmp_path: Path, extra: str) -> tuple[Any, str]:
    proj, db = _project(tmp_path, extra=extra, rows=0)
    migration(proj, "0002_index", FIRST, INDEX, atomic=False)
    result = proj.manage("migrate", "shop", "-v", "0")
    assert result.returncode == 0, result.err
    query(db, "INSERT INTO shop_item (name) SELECT 'n' || g FROM generate_series(1, 1000) g")
    return proj, db


def test_reindex_retries_do_not_pile_up_ccnew_indexes(tmp_path: Path) -> None:
    proj, db = _indexed_project(
        tmp_path,
        'MIGTOOLS_LOCK_TIMEOUT = "200ms"\nMIGTOOLS_LOCK_RETRIES = 2\n'
        "MIGTOOLS_LOCK_RETRY_DELAY = '100ms'",
    )
    migration(proj, "0003_reindex", [("shop", "0002_index")], REINDEX, atomic=False)
    ready = threading.Event()
    writer = threading.Thread(target=_writer, args=(db, 6.0, ready))
    writer.start()
    ready.wait(10)
    result = proj.manage("migrate", "shop")
    stuck = query(db, INVALID)
    writer.join()
    assert result.returncode == 1, result.out + result.err
    assert "Traceback" not in result.err
    # One REINDEX left one _ccnew copy; the retries did not add more, and the message names it.
    assert stuck == [("item_name_ix_ccnew",)]
    assert '"public"."item_name_ix_ccnew"' in result.err
    # The re-run drops it before reindexing: nothing INVALID remains.
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.err
    assert query(db, INVALID) == []
    assert query(db, VALID_IX) == [(True,)]


def test_reindex_retried_once_the_writer_is_gone(tmp_path: Path) -> None:
    proj, db = _indexed_project(
        tmp_path,
        'MIGTOOLS_LOCK_TIMEOUT = "200ms"\nMIGTOOLS_LOCK_RETRIES = 10\n'
        "MIGTOOLS_LOCK_RETRY_DELAY = '200ms'",
    )
    migration(proj, "0003_reindex", [("shop", "0002_index")], REINDEX, atomic=False)
    ready = threading.Event()
    writer = threading.Thread(target=_writer, args=(db, 5.0, ready))
    writer.start()
    ready.wait(10)
    result = proj.manage("migrate", "shop")
    writer.join()
    assert result.returncode == 0, result.err
    assert 'dropped INVALID index "public"."item_name_ix_ccnew"' in result.err
    assert query(db, INVALID) == []
    assert query(db, VALID_IX) == [(True,)]


def test_two_deploys_at_once_both_exit_0(tmp_path: Path) -> None:
    """The second migrate starts while the first builds an index for seconds: it waits for
    the migrate lock without holding a snapshot, so the build does not wait for it (no
    "deadlock detected"), and then finds nothing left to do. Twice the rows of the other
    cases: the build must outlast the second process's start-up on a loaded machine."""
    proj, db = _project(tmp_path, rows=2 * BIG_ROWS)
    migration(proj, "0002_index", FIRST, INDEX, atomic=False, post=True)
    first = _popen(proj, "migrate", "shop")
    _wait_for(db, BUILDING, first)
    second = _popen(proj, "migrate", "shop")
    out1, err1 = first.communicate(timeout=300)
    out2, err2 = second.communicate(timeout=300)
    assert first.returncode == 0, out1 + err1
    assert second.returncode == 0, out2 + err2
    assert "deadlock" not in err1 + err2
    assert "Another migrate is running on this database" in err2
    assert "held by pid" in err2
    assert "Got the migrate lock after" in err2
    assert "No migrations to apply" in out2
    assert query(db, INVALID) == []
    assert query(db, VALID_IX) == [(True,)]


# -- statement timeout in a data migration ---------------------------------------------------

SLOW_DATA = (
    "migrations.RunPython(lambda apps, se: se.connection.cursor().execute("
    '"UPDATE shop_item SET name = name WHERE pg_sleep(0.5) IS NOT NULL"), '
    "migrations.RunPython.noop),"
)


@pytest.mark.parametrize("atomic", [True, False])
def test_statement_timeout_in_data_migration_is_one_line(tmp_path: Path, atomic: bool) -> None:
    proj, db = _project(
        tmp_path,
        extra='MIGTOOLS_STATEMENT_TIMEOUT = "300ms"\nMIGTOOLS_LOCK_TIMEOUT = "100ms"',
        rows=4,
    )
    migration(proj, "0002_data", FIRST, SLOW_DATA, atomic=atomic)
    result = proj.manage("migrate", "shop")
    assert result.returncode == 1, result.out + result.err
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    line = lines[0]
    assert "shop.0002_data" in line
    assert "statement_timeout (300ms, MIGTOOLS_STATEMENT_TIMEOUT" in line
    assert "is_post_deployment = True" in line and "RunBackfill" in line
    assert query(db, "SELECT count(*) FROM django_migrations WHERE name = '0002_data'") == [(0,)]
    # The way out it names works: post-deployment migrations get no statement_timeout.
    migration(proj, "0002_data", FIRST, SLOW_DATA, atomic=atomic, post=True)
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.err


# -- the server going away ---------------------------------------------------------------------


def test_backend_terminated_mid_index_build_then_rerun(tmp_path: Path) -> None:
    """pg_terminate_backend from another session while the index builds: one line naming the
    alias, host and port and the migration's state, exit 1; the INVALID index it left is
    dropped by the next migrate, which builds it."""
    proj, db = _project(tmp_path)
    migration(proj, "0002_index", FIRST, INDEX, atomic=False, post=True)
    proc = _popen(proj, "migrate", "shop")
    pid = _wait_for(db, BUILDING, proc)[0][0]
    query(db, "SELECT pg_terminate_backend(%s)", (pid,))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    host = query(db, "SELECT inet_server_addr()::text, current_setting('port')")[0]
    assert "Lost the connection to database 'default'" in err
    assert f"host {host[0].split('/')[0]}, port {host[1]}" in err
    assert "SQLSTATE 57P01" in err
    assert "shop.0002_index was running (atomic = False)" in err
    assert "not recorded as applied" in err
    assert query(db, INVALID) == [("item_name_ix",)]
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.err
    assert query(db, INVALID) == []
    assert query(db, VALID_IX) == [(True,)]


SLEEPY = (
    "migrations.RunPython(lambda apps, se: se.connection.cursor().execute("
    '"SELECT pg_sleep(60)"), migrations.RunPython.noop),'
)


def test_server_stopped_mid_run_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pg_ctl stop -m fast`` on the server while a migration runs (a cluster of its own)."""
    server = ThrowawayServer()
    url = server.start()
    try:
        monkeypatch.setenv("DATABASE_URL", url)
        proj, db = _project(tmp_path, extra="MIGTOOLS_STATEMENT_TIMEOUT = None", rows=10)
        migration(proj, "0002_slow", FIRST, SLEEPY, atomic=True)
        proc = _popen(proj, "migrate", "shop")
        _wait_for(
            db,
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%%'",
            proc,
        )
        server._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(server.datadir))
        server.running = False
        out, err = proc.communicate(timeout=120)
    finally:
        server.stop()
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Lost the connection to database 'default' (name " in err
    assert f"host 127.0.0.1, port {server.port}) mid-run" in err
    assert "SQLSTATE 57P01" in err
    assert "shop.0002_slow was running in a transaction that never committed" in err
