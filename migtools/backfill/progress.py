"""The backfill progress store: two migtools tables, created on demand.

``migtools_backfill`` holds one row per backfill (``RunBackfill`` name): its state, the last key
done, rows, time spent in batches and the last error. ``migtools_backfill_range`` holds the key
ranges of a backfill run by the tasks runner. A worker leases a range (``SKIP LOCKED``: never two
at once) and renews the lease while it runs; a range whose lease expired (its worker died) goes
back to pending exactly once (:func:`reap`), and the tasks runner enqueues a task for it.

The tables are created by the first backfill that needs them (``CREATE TABLE IF NOT EXISTS``
under a transaction-scoped advisory lock), the way Django's ``MigrationRecorder`` creates
``django_migrations``: a migration with ``RunBackfill`` cannot be ordered after a migtools app
migration without every project adding a dependency on it, and the lockfile and graph code would
start seeing ``migtools`` as an app with migrations.

Every write here takes a cursor inside the caller's transaction: progress is committed with the
batch it describes, or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import transaction

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.utils import CursorWrapper

TABLE = "migtools_backfill"
RANGES = "migtools_backfill_range"

PENDING = "pending"
LEASED = "leased"
RUNNING = "running"
DONE = "done"
FAILED = "failed"

_LOCK_KEY = 0x6D74_6266  # pg_advisory_xact_lock key while creating the tables ("mtbf")

_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
        name text PRIMARY KEY,
        app_label text NOT NULL,
        migration text NOT NULL,
        model text NOT NULL,
        runner text NOT NULL,
        state text NOT NULL,
        last_key text,
        rows bigint NOT NULL DEFAULT 0,
        total bigint,
        batches integer NOT NULL DEFAULT 0,
        seconds double precision NOT NULL DEFAULT 0,
        started_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        last_error text,
        enqueued boolean NOT NULL DEFAULT true,
        watch_at timestamptz
    )""",
    f"""CREATE TABLE IF NOT EXISTS {RANGES} (
        backfill text NOT NULL REFERENCES {TABLE} (name) ON DELETE CASCADE,
        seq integer NOT NULL,
        lo text,
        hi text NOT NULL,
        state text NOT NULL,
        rows bigint,
        seconds double precision,
        worker text,
        done_at timestamptz,
        token text,
        lease_until timestamptz,
        requeued integer NOT NULL DEFAULT 0,
        PRIMARY KEY (backfill, seq)
    )""",
)
# Columns added since the tables were first created (a store made by an older version).
_UPGRADE = (
    f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS enqueued boolean NOT NULL DEFAULT true",
    f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS watch_at timestamptz",
    f"ALTER TABLE {RANGES} ADD COLUMN IF NOT EXISTS token text",
    f"ALTER TABLE {RANGES} ADD COLUMN IF NOT EXISTS lease_until timestamptz",
    f"ALTER TABLE {RANGES} ADD COLUMN IF NOT EXISTS requeued integer NOT NULL DEFAULT 0",
)


@dataclass(frozen=True)
class Backfill:
    """One row of ``migtools_backfill`` (with the tasks runner's ranges folded in)."""

    name: str
    app_label: str
    migration: str
    model: str
    runner: str
    state: str
    last_key: str | None
    rows: int
    total: int | None
    batches: int
    seconds: float
    last_error: str | None
    ranges_left: int = 0

    @property
    def rate(self) -> float | None:
        """Rows per second of batch time."""
        return self.rows / self.seconds if self.seconds > 0 else None


def exists(connection: BaseDatabaseWrapper) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [RANGES])
        row = cursor.fetchone()
    return bool(row and row[0])


def _current(connection: BaseDatabaseWrapper) -> bool:
    """The tables exist with their newest column."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s) "
            "AND attname = 'requeued' AND NOT attisdropped)",
            [RANGES],
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def ensure(connection: BaseDatabaseWrapper) -> None:
    """Create the tables if missing, add the columns newer versions use (safe when two
    sessions race)."""
    if _current(connection):
        return
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        for ddl in (*_DDL, *_UPGRADE):
            cursor.execute(ddl)


_COLUMNS = (
    "name, app_label, migration, model, runner, state, last_key, rows, total, batches, "
    "seconds, last_error"
)


def _backfill(row: Any, ranges_left: int = 0) -> Backfill:
    return Backfill(*row[:12], ranges_left=ranges_left)  # type: ignore[misc]


def get(cursor: CursorWrapper, name: str, *, lock: bool = False) -> Backfill | None:
    """The backfill's row; ``lock`` takes its row lock until the transaction ends."""
    cursor.execute(
        f"SELECT {_COLUMNS} FROM {TABLE} WHERE name = %s" + (" FOR UPDATE" if lock else ""),
        [name],
    )
    row = cursor.fetchone()
    return None if row is None else _backfill(row)


def start(
    cursor: CursorWrapper,
    *,
    name: str,
    app_label: str,
    migration: str,
    model: str,
    runner: str,
    total: int | None,
) -> None:
    """Record a new backfill, or reset a finished/failed one's state to running (its last
    key stays: a resumed run goes on after it)."""
    cursor.execute(
        f"INSERT INTO {TABLE} (name, app_label, migration, model, runner, state, total) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (name) DO UPDATE SET state = CASE WHEN "
        f"{TABLE}.state = %s THEN {TABLE}.state ELSE %s END, "
        "runner = EXCLUDED.runner, updated_at = now(), "
        f"total = COALESCE(EXCLUDED.total, {TABLE}.total)",
        [name, app_label, migration, model, runner, RUNNING, total, DONE, RUNNING],
    )


def advance(cursor: CursorWrapper, name: str, last_key: str, rows: int, seconds: float) -> None:
    """One inline batch done: in the batch's own transaction."""
    cursor.execute(
        f"UPDATE {TABLE} SET last_key = %s, rows = rows + %s, batches = batches + 1, "
        "seconds = seconds + %s, updated_at = now(), last_error = NULL WHERE name = %s",
        [last_key, rows, seconds, name],
    )


def set_state(cursor: CursorWrapper, name: str, state: str, error: str | None = None) -> None:
    cursor.execute(
        f"UPDATE {TABLE} SET state = %s, updated_at = now(), "
        "finished_at = CASE WHEN %s = %s THEN now() ELSE NULL END, "
        "last_error = COALESCE(%s, CASE WHEN %s = %s THEN NULL ELSE last_error END) "
        "WHERE name = %s",
        [state, state, DONE, error, state, DONE, name],
    )


def forget(connection: BaseDatabaseWrapper, name: str) -> None:
    """Drop a backfill's record (its ranges go with it): the migration was unapplied."""
    if not exists(connection):
        return
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE name = %s", [name])


# -- ranges (tasks runner) --------------------------------------------------------------------


def add_ranges(cursor: CursorWrapper, name: str, ranges: list[tuple[str | None, str, int]]) -> None:
    """The key ranges ``(lo, hi, rows)`` of a tasks backfill, all pending."""
    cursor.execute(f"DELETE FROM {RANGES} WHERE backfill = %s", [name])
    for seq, (lo, hi, rows) in enumerate(ranges):
        cursor.execute(
            f"INSERT INTO {RANGES} (backfill, seq, lo, hi, state, rows) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [name, seq, lo, hi, PENDING, rows],
        )


def has_ranges(cursor: CursorWrapper, name: str) -> bool:
    cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {RANGES} WHERE backfill = %s)", [name])
    row = cursor.fetchone()
    return bool(row and row[0])


def lease_range(
    cursor: CursorWrapper, name: str, worker: str, token: str, seconds: float
) -> tuple[int, str | None, str, int] | None:
    """Lease one pending range nobody else is taking (``SKIP LOCKED``) for ``seconds``:
    ``(seq, lo, hi, rows)``, or None when none is pending."""
    cursor.execute(
        f"UPDATE {RANGES} r SET state = %s, worker = %s, token = %s, "
        "lease_until = clock_timestamp() + make_interval(secs => %s) "
        f"FROM (SELECT seq FROM {RANGES} WHERE backfill = %s AND state = %s "
        "ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) c "
        "WHERE r.backfill = %s AND r.seq = c.seq RETURNING r.seq, r.lo, r.hi, r.rows",
        [LEASED, worker, token, seconds, name, PENDING, name],
    )
    row = cursor.fetchone()
    return None if row is None else (int(row[0]), row[1], str(row[2]), int(row[3] or 0))


def renew_lease(cursor: CursorWrapper, name: str, seq: int, token: str, seconds: float) -> bool:
    """Extend the lease (the heartbeat); False when it is no longer this holder's."""
    cursor.execute(
        f"UPDATE {RANGES} SET lease_until = clock_timestamp() + make_interval(secs => %s) "
        "WHERE backfill = %s AND seq = %s AND token = %s AND state = %s",
        [seconds, name, seq, token, LEASED],
    )
    return bool(cursor.rowcount)


def release_range(cursor: CursorWrapper, name: str, seq: int, token: str) -> None:
    """Give a leased range back (its batch failed): pending again."""
    cursor.execute(
        f"UPDATE {RANGES} SET state = %s, token = NULL, lease_until = NULL "
        "WHERE backfill = %s AND seq = %s AND token = %s AND state = %s",
        [PENDING, name, seq, token, LEASED],
    )


def finish_range(
    cursor: CursorWrapper, name: str, seq: int, token: str, seconds: float, worker: str
) -> bool:
    """Mark the range done, in the transaction of its batch; False (nothing changed) when the
    lease is no longer this holder's: the caller rolls the batch back."""
    cursor.execute(
        f"UPDATE {RANGES} SET state = %s, seconds = %s, worker = %s, done_at = now(), "
        "token = NULL, lease_until = NULL "
        "WHERE backfill = %s AND seq = %s AND token = %s AND state = %s",
        [DONE, seconds, worker, name, seq, token, LEASED],
    )
    return bool(cursor.rowcount)


def reap(cursor: CursorWrapper, name: str) -> list[int]:
    """Ranges whose lease expired (their worker died) back to pending: each one exactly once
    (the conditional UPDATE), so the caller enqueues one task per returned range."""
    cursor.execute(
        f"UPDATE {RANGES} SET state = %s, token = NULL, lease_until = NULL, worker = NULL, "
        "requeued = requeued + 1 "
        "WHERE backfill = %s AND state = %s AND lease_until < clock_timestamp() RETURNING seq",
        [PENDING, name, LEASED],
    )
    return sorted(int(r[0]) for r in cursor.fetchall())


def schedule_watch(cursor: CursorWrapper, name: str, seconds: float) -> Any:
    """Book the backfill's next lease check ``seconds`` from now, unless one is booked for
    later already: the time booked (the caller enqueues the check), or None."""
    cursor.execute(
        f"UPDATE {TABLE} SET watch_at = clock_timestamp() + make_interval(secs => %s) "
        "WHERE name = %s AND state = %s AND (watch_at IS NULL OR watch_at <= clock_timestamp()) "
        "RETURNING watch_at",
        [seconds, name, RUNNING],
    )
    row = cursor.fetchone()
    return None if row is None else row[0]


def set_enqueued(cursor: CursorWrapper, name: str, enqueued: bool) -> None:
    cursor.execute(f"UPDATE {TABLE} SET enqueued = %s WHERE name = %s", [enqueued, name])


def pending_ranges(cursor: CursorWrapper, name: str) -> int:
    cursor.execute(
        f"SELECT count(*) FROM {RANGES} WHERE backfill = %s AND state = %s", [name, PENDING]
    )
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def ranges_left(cursor: CursorWrapper, name: str) -> int:
    cursor.execute(
        f"SELECT count(*) FROM {RANGES} WHERE backfill = %s AND state <> %s", [name, DONE]
    )
    row = cursor.fetchone()
    return int(row[0]) if row else 0


# -- listing ----------------------------------------------------------------------------------


def all_backfills(connection: BaseDatabaseWrapper) -> list[Backfill]:
    """Every recorded backfill; a tasks backfill's rows and time are summed from its ranges."""
    if not exists(connection):
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join('b.' + c.strip() for c in _COLUMNS.split(','))}, "
            "r.rows, r.seconds, r.done, r.left_ "
            f"FROM {TABLE} b LEFT JOIN (SELECT backfill, "
            "sum(rows) FILTER (WHERE state = 'done') AS rows, "
            "sum(seconds) AS seconds, count(*) FILTER (WHERE state = 'done') AS done, "
            "count(*) FILTER (WHERE state <> 'done') AS left_ "
            f"FROM {RANGES} GROUP BY backfill) r ON r.backfill = b.name ORDER BY b.started_at, "
            "b.name"
        )
        out = []
        for row in cursor.fetchall():
            b = _backfill(row, int(row[15] or 0))
            if b.runner == "tasks" and row[14] is not None:
                b = Backfill(
                    **{
                        **b.__dict__,
                        "rows": int(row[12] or 0),
                        "seconds": float(row[13] or 0),
                        "batches": int(row[14] or 0),
                    }
                )
            out.append(b)
        return out


def find(connection: BaseDatabaseWrapper, name: str) -> Backfill | None:
    """One backfill as ``all_backfills`` reports it (a tasks backfill's rows summed)."""
    return next((b for b in all_backfills(connection) if b.name == name), None)


# -- who runs what ---------------------------------------------------------------------------

_RUN_LOCK = 0x6D74_6272  # first key of a backfill run's session advisory lock ("mtbr")


def lock_run(cursor: CursorWrapper, name: str) -> None:
    """Hold the backfill's run lock for this session (waits for another run to end)."""
    cursor.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", [_RUN_LOCK, name])


def unlock_run(cursor: CursorWrapper, name: str) -> None:
    cursor.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [_RUN_LOCK, name])


def running(connection: BaseDatabaseWrapper) -> set[str]:
    """Names of the backfills some session is running inline right now."""
    if not exists(connection):
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT b.name FROM {TABLE} b JOIN pg_locks l ON l.locktype = 'advisory' "
            "AND l.classid = %s::oid AND l.objsubid = 2 "
            "AND l.objid = (hashtext(b.name)::bigint & 4294967295)::oid AND l.granted",
            [_RUN_LOCK],
        )
        return {str(r[0]) for r in cursor.fetchall()}
