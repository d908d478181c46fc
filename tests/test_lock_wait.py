"""Lock waits with default timeouts (issue 15 item 1): a statement waiting for a lock that
another real session holds is retried and reported as a lock wait, naming the table and the
holder's pid; ``statement_timeout`` measures running time only."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.safety_helpers import INITIAL, connect, migration, query, safe_project

FIRST = [("shop", "0001_initial")]
# Default settings for the timeouts and retries (safe_project shortens the retry delay).
DEFAULTS = 'MIGTOOLS_LOCK_RETRY_DELAY = "500ms"'
ADD_FIELD = 'migrations.AddField("item", "note", models.CharField(max_length=20, null=True)),'


def _project(tmp_path: Path, atomic: bool = True) -> tuple[Any, str]:
    proj, db = safe_project(tmp_path / "p", extra=DEFAULTS)
    migration(proj, "0001_initial", [], INITIAL)
    result = proj.manage("migrate", "shop", "-v", "0")
    assert result.returncode == 0, result.err
    migration(proj, "0002_note", FIRST, ADD_FIELD, atomic=atomic)
    return proj, db


def _holder(db: str, ready: threading.Event, release: threading.Event, pid: list[int]) -> None:
    """The operator's psql: ``BEGIN; LOCK TABLE ... IN ACCESS SHARE MODE; SELECT pg_sleep(60)``."""
    with connect(db) as conn:
        conn.execute("SET application_name = 'psql'")
        pid.append(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
        with conn.transaction():
            conn.execute("LOCK TABLE shop_item IN ACCESS SHARE MODE")
            ready.set()
            release.wait(90)


def _migrate(proj: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(proj.root), "PYTHONWARNINGS": "ignore"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.Popen(
        [sys.executable, "manage.py", "migrate", "shop"],
        cwd=proj.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _applied(db: str) -> int:
    rows = query(db, "SELECT count(*) FROM django_migrations WHERE name = '0002_note'")
    return int(rows[0][0])


@pytest.mark.parametrize("atomic", [True, False])
def test_lock_held_throughout_is_retried_then_named_with_its_holder(
    tmp_path: Path, atomic: bool
) -> None:
    """The issue's case: pre-deploy AddField(null=True), default timeouts, an ACCESS SHARE
    holder that never lets go: retried (as a whole migration when atomic, as a statement
    when not), then one line naming the table and the holder's pid."""
    proj, db = _project(tmp_path, atomic)
    ready, release, pid = threading.Event(), threading.Event(), []
    holder = threading.Thread(target=_holder, args=(db, ready, release, pid))
    holder.start()
    try:
        assert ready.wait(10)
        started = time.monotonic()
        proc = _migrate(proj)
        out, err = proc.communicate(timeout=120)
        elapsed = time.monotonic() - started
    finally:
        release.set()
        holder.join()
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err
    assert "statement_timeout" not in err.replace("lock_timeout", ""), err
    assert "RunBackfill" not in err
    assert err.count("retrying") == 3, err
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert "shop.0002_note" in last
    assert 'waited for a lock on "shop_item"' in last, last
    assert f"held by pid {pid[0]} (AccessShareLock" in last, last
    assert "application_name 'psql'" in last, last
    if atomic:
        assert "Each attempt was rolled back: nothing of the migration was applied." in last
    else:
        assert 'statement ALTER TABLE "shop_item" ADD COLUMN "note"' in last
        assert "The statement changed nothing." in last
    assert elapsed > 6, elapsed  # more than one default lock_timeout: it retried
    assert _applied(db) == 0


def test_lock_released_during_the_retries_applies(tmp_path: Path) -> None:
    proj, db = _project(tmp_path)
    ready, release, pid = threading.Event(), threading.Event(), []
    holder = threading.Thread(target=_holder, args=(db, ready, release, pid))
    holder.start()
    try:
        assert ready.wait(10)
        proc = _migrate(proj)
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "retrying" in line, line
        assert f'hit (lock on "shop_item", held by pid {pid[0]} (AccessShareLock' in line, line
    finally:
        release.set()
        holder.join()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert _applied(db) == 1
    assert query(
        db,
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'shop_item' AND column_name = 'note'",
    ) == [(1,)]
