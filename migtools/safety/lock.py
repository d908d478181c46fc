"""The migrate lock: a PostgreSQL advisory lock per database, so two deploys never migrate at
once (the second waits for the first).

The second one waits without holding a snapshot: it polls ``pg_try_advisory_lock`` in short
autocommit statements. A session blocked in ``SELECT pg_advisory_lock()`` holds the snapshot
of that statement, and the first deploy's ``CREATE INDEX CONCURRENTLY`` waits for every older
snapshot to go away, while the second waits for the first's lock: PostgreSQL then aborts one
of them with "deadlock detected" (and leaves an INVALID index).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from migtools.safety.faults import translated_run

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

ADVISORY_LOCK_NAME = "migtools.migrate"
POLL_FIRST = 0.1
POLL_MAX = 1.0

# Who holds a bigint advisory lock: pg_locks shows its high half as classid, its low half as
# objid and objsubid 1.
_HOLDER = """
SELECT a.pid, a.application_name, a.client_addr, a.client_port, a.backend_start,
       a.state, a.query_start
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.classid = %s AND l.objid = %s
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


def advisory_key(connection: BaseDatabaseWrapper) -> int:
    digest = hashlib.sha256(
        f"{ADVISORY_LOCK_NAME}:{connection.settings_dict.get('NAME')}".encode()
    ).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _try_lock(connection: BaseDatabaseWrapper, key: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        row = cursor.fetchone()
    return bool(row and row[0])


def holder(connection: BaseDatabaseWrapper, key: int) -> str:
    """Who holds the migrate lock, from pg_stat_activity (empty if it was just released)."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    with connection.cursor() as cursor:
        cursor.execute(_HOLDER, [unsigned >> 32, unsigned & 0xFFFFFFFF])
        row: Any = cursor.fetchone()
    if row is None:
        return ""
    pid, app, addr, port, connected, state, query_start = row
    client = f"{addr}:{port}" if addr else "local socket"
    app_part = f", application_name {app!r}" if app else ""
    since = f"connected since {connected:%Y-%m-%d %H:%M:%S %Z}".rstrip()
    if state and query_start is not None:
        since += f", {state} since {query_start:%H:%M:%S}"
    return f"held by pid {pid}{app_part}, client {client}, {since}"


@contextmanager
def migrate_lock(
    connection: BaseDatabaseWrapper,
    say: Callable[[str], None] = lambda _line: None,
    *,
    poll: float = POLL_FIRST,
) -> Iterator[None]:
    """Hold the database's migrate lock for the block; ``say`` hears when it has to wait, who
    holds the lock and how long it waited. A server lost inside the block becomes one line
    (:class:`~migtools.errors.ServerGoneError`)."""
    if connection.vendor != "postgresql":
        yield
        return
    key = advisory_key(connection)
    if not _try_lock(connection, key):
        started = time.monotonic()
        told = holder(connection, key)
        say(
            f"Another migrate is running on this database (advisory lock {key}"
            f"{', ' + told if told else ''}); waiting for it to finish..."
        )
        interval = poll
        while not _try_lock(connection, key):
            time.sleep(interval)
            interval = min(interval * 2, POLL_MAX)
            now = holder(connection, key)
            if now and now.split(",")[0] != told.split(",")[0]:
                told = now
                say(f"The migrate lock is now {now}; still waiting...")
        say(f"Got the migrate lock after {time.monotonic() - started:.1f}s.")
    try:
        with translated_run(connection):
            yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        except Exception:  # the session ended: its advisory locks went with it
            pass
