"""The lock-timeout retry policy and loop (``migtools.safety.retry``), against locks held by
another real PostgreSQL session."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import psycopg
import pytest

from migtools.safety import retry
from tests.safety_helpers import (
    INITIAL,
    connect,
    create_database,
    migration,
    safe_project,
    server_conninfo,
)

FIRST = [("shop", "0001_initial")]


def test_policy_reads_every_duration_through_conf() -> None:
    """One duration parser: ``Policy.from_settings`` takes conf's values, ``".5s"`` included."""
    from django.test import override_settings

    with override_settings(
        MIGTOOLS_LOCK_TIMEOUT=".5s",
        MIGTOOLS_LOCK_RETRY_DELAY="250ms",
        MIGTOOLS_LOCK_RETRY_MAX="2min",
        MIGTOOLS_LOCK_RETRIES=4,
    ):
        policy = retry.Policy.from_settings()
    assert (policy.retries, policy.delay, policy.max_wait) == (4, 0.25, 120.0)
    assert policy.lock_timeout == pytest.approx(0.5)
    with override_settings(MIGTOOLS_LOCK_TIMEOUT=None, MIGTOOLS_LOCK_RETRY_MAX=None):
        policy = retry.Policy.from_settings()
    assert (policy.lock_timeout, policy.max_wait) == (0.0, 0.0)


def test_backoff_doubles_with_jitter_between_half_and_all() -> None:
    policy = retry.Policy(
        retries=5, delay=0.4, max_wait=60, lock_timeout=1, random=random.Random(7).random
    )
    waits = [policy.backoff(n) for n in range(5)]
    for n, wait in enumerate(waits):
        full = 0.4 * 2**n
        assert full / 2 <= wait <= full
    # Jitter: two deploys retrying together do not wait the same.
    other = retry.Policy(
        retries=5, delay=0.4, max_wait=60, lock_timeout=1, random=random.Random(8).random
    )
    assert [other.backoff(n) for n in range(5)] != waits


def _hold(db: str, ready: threading.Event, release: threading.Event) -> None:
    with connect(db) as conn, conn.transaction():
        conn.execute("CREATE TABLE IF NOT EXISTS hot (id int)")
    with connect(db) as conn, conn.transaction():
        conn.execute("LOCK TABLE hot IN ACCESS EXCLUSIVE MODE")
        ready.set()
        release.wait(30)


def _locker(db: str) -> psycopg.Connection[object]:
    conn = psycopg.connect(server_conninfo(db), autocommit=True)
    conn.execute("SET lock_timeout = '100ms'")
    return conn


def test_run_gives_up_at_the_cap_on_waiting_with_a_real_lock() -> None:
    db = create_database()
    ready, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(db, ready, release))
    holder.start()
    ready.wait(10)
    seen: list[retry.Progress] = []
    try:
        with _locker(db) as conn:
            policy = retry.Policy(retries=100, delay=0.1, max_wait=1.0, lock_timeout=0.1)
            started = time.monotonic()
            with pytest.raises(retry.Exhausted) as info:
                retry.run(
                    lambda: conn.execute("SELECT count(*) FROM hot"), policy, on_retry=seen.append
                )
            elapsed = time.monotonic() - started
    finally:
        release.set()
        holder.join()
    exhausted = info.value
    assert exhausted.capped
    assert exhausted.attempts == len(seen) + 1 < 100
    assert exhausted.waited <= 1.0
    assert elapsed < 2.5
    assert isinstance(exhausted.__cause__, psycopg.errors.LockNotAvailable)
    assert [p.waited for p in seen] == sorted(p.waited for p in seen)


def test_run_succeeds_once_the_lock_is_released() -> None:
    db = create_database()
    ready, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(db, ready, release))
    holder.start()
    ready.wait(10)
    threading.Timer(0.8, release.set).start()
    seen: list[retry.Progress] = []
    try:
        with _locker(db) as conn:
            policy = retry.Policy(retries=20, delay=0.1, max_wait=30, lock_timeout=0.1)
            retry.run(
                lambda: conn.execute("SELECT count(*) FROM hot"), policy, on_retry=seen.append
            )
    finally:
        release.set()
        holder.join()
    assert seen, "the lock was held: at least one retry"


def test_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    def step() -> None:
        calls.append(1)
        raise ValueError("not a lock timeout")

    with pytest.raises(ValueError):
        retry.run(step, retry.Policy(retries=5, delay=0.01, max_wait=10, lock_timeout=0.1))
    assert calls == [1]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            'CREATE INDEX CONCURRENTLY "ix" ON "shop_item" ("name")',
            retry.IndexBuild(None, "shop_item", "ix", False),
        ),
        (
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ix ON app.t (a)",
            retry.IndexBuild("app", "t", "ix", False),
        ),
        ('REINDEX INDEX CONCURRENTLY "ix"', retry.IndexBuild(None, None, "ix", True)),
        ("REINDEX (CONCURRENTLY) INDEX s.ix", retry.IndexBuild("s", None, "ix", True)),
        ("REINDEX TABLE CONCURRENTLY t", retry.IndexBuild(None, "t", None, True)),
        ('CREATE INDEX "ix" ON "t" ("a")', None),
        ("CREATE INDEX CONCURRENTLY ON t (a)", None),  # unnamed: PostgreSQL picks the name
        ("REINDEX INDEX ix", None),
        ("SELECT 'CONCURRENTLY'", None),
    ],
)
def test_index_build_is_read_with_pglast(sql: str, expected: retry.IndexBuild | None) -> None:
    assert retry.index_build(sql) == expected


# -- end to end: MIGTOOLS_LOCK_RETRY_MAX caps the waiting of a migrate -------------------------


def test_migrate_stops_retrying_at_lock_retry_max_and_says_how_long(tmp_path: Path) -> None:
    proj, db = safe_project(
        tmp_path / "p",
        extra='MIGTOOLS_LOCK_TIMEOUT = "200ms"\nMIGTOOLS_LOCK_RETRIES = 50\n'
        'MIGTOOLS_LOCK_RETRY_MAX = "1500ms"',
    )
    migration(proj, "0001_initial", [], INITIAL)
    assert proj.manage("migrate", "shop", "-v", "0").returncode == 0
    migration(
        proj,
        "0002_step",
        FIRST,
        'SafeRunSQL("UPDATE shop_item SET name = name", migrations.RunSQL.noop),',
        atomic=False,
    )
    ready, release = threading.Event(), threading.Event()

    def hold() -> None:
        with connect(db) as conn, conn.transaction():
            conn.execute("LOCK TABLE shop_item IN ACCESS EXCLUSIVE MODE")
            ready.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    ready.wait(10)
    try:
        started = time.monotonic()
        result = proj.manage("migrate", "shop")
        elapsed = time.monotonic() - started
    finally:
        release.set()
        holder.join()
    assert result.returncode == 1, result.out + result.err
    assert "Traceback" not in result.err
    assert "stopped by MIGTOOLS_LOCK_RETRY_MAX (1500ms)" in result.err
    waited = float(result.err.split("waiting ")[1].split("s in all")[0])
    assert 0.2 <= waited <= 1.5
    assert "The statement changed nothing." in result.err
    assert elapsed < 15  # not 50 retries
    assert proj.manage("migrate", "shop").returncode == 0
