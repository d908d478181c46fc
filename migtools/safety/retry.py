"""The lock-timeout retry policy and loop.

A migration step that hits ``lock_timeout`` (SQLSTATE 55P03) is tried again after a backoff:
exponential from ``MIGTOOLS_LOCK_RETRY_DELAY``, with jitter (each wait is drawn between half
and all of it, so the retries of several deploys, or of one deploy against a busy table, do
not arrive in waves), at most ``MIGTOOLS_LOCK_RETRIES`` times and never past
``MIGTOOLS_LOCK_RETRY_MAX`` of waiting in all (lock waits plus backoff: while a DDL statement
waits for its lock, the application's queries on that table queue behind it).

A timed-out concurrent index build leaves an INVALID index behind (``CREATE INDEX
CONCURRENTLY`` the index itself, ``REINDEX ... CONCURRENTLY`` a ``*_ccnew``/``*_ccold`` one).
:func:`drop_invalid_leftovers` drops those of the statement (names read with pglast, state
from ``pg_index.indisvalid``) before each retry and before a re-run builds again.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import pglast
import pglast.parser
from pglast import ast
from pglast.enums import ReindexObjectType

from migtools import conf as mt_settings
from migtools.safety.faults import is_lock_timeout

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger("migtools.apply")

T = TypeVar("T")

# What REINDEX CONCURRENTLY names its transient indexes: <name>_ccnew[N], <name>_ccold[N]
# (the name truncated to fit 63 bytes).
_TRANSIENT = re.compile(r"^(?P<base>.*)_cc(?:new|old)[0-9]*$")


@dataclass
class Policy:
    """How lock timeouts are retried. ``random`` draws the jitter (a seeded
    ``random.Random`` makes the waits repeatable)."""

    retries: int
    delay: float
    max_wait: float
    lock_timeout: float
    random: Callable[[], float] = field(default=random.random)

    @classmethod
    def from_settings(cls) -> Policy:
        return cls(
            retries=mt_settings.lock_retries(),
            delay=mt_settings.lock_retry_delay(),
            max_wait=mt_settings.lock_retry_max_seconds(),
            lock_timeout=mt_settings.lock_timeout_seconds(),
        )

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (0-based): between half and all of
        ``delay * 2**retry``."""
        full = self.delay * 2**retry
        return float(full / 2 + self.random() * full / 2)


@dataclass(eq=False)
class Exhausted(Exception):
    """Every allowed attempt hit lock_timeout (raised from the last one's error)."""

    attempts: int
    waited: float
    capped: bool


@dataclass
class Progress:
    """Told to ``on_retry`` before each wait: the attempt that failed, the wait ahead and the
    time waited so far."""

    attempt: int
    retries: int
    wait: float
    waited: float


def run(
    step: Callable[[], T],
    policy: Policy,
    *,
    before_retry: Callable[[], None] = lambda: None,
    on_retry: Callable[[Progress], None] = lambda _progress: None,
) -> T:
    """``step()``, retried on lock timeouts as ``policy`` allows; :class:`Exhausted` when it
    gives up. Other errors pass through at once."""
    waited = 0.0
    attempt = 0
    while True:
        started = time.monotonic()
        try:
            return step()
        except Exception as exc:
            if not is_lock_timeout(exc):
                raise
            # The time this attempt spent blocked: at most one lock_timeout (a concurrent
            # index build may have worked for minutes before it waited and timed out).
            blocked = time.monotonic() - started
            if policy.lock_timeout > 0:
                blocked = min(blocked, policy.lock_timeout)
            waited += blocked
            attempt += 1
            if attempt > policy.retries:
                raise Exhausted(attempt, waited, capped=False) from exc
            wait = policy.backoff(attempt - 1)
            if policy.max_wait > 0 and waited + wait + policy.lock_timeout > policy.max_wait:
                raise Exhausted(attempt, waited, capped=True) from exc
            on_retry(Progress(attempt, policy.retries, wait, waited))
            time.sleep(wait)
            waited += wait
            before_retry()


def gave_up(label: str, what: str, exhausted: Exhausted, state: str, waited_for: str = "") -> str:
    """The message when the retries give up; ``state`` says truly what was left behind,
    ``waited_for`` who held the lock (``blockers.holders``), when known."""
    cap = (
        f", stopped by MIGTOOLS_LOCK_RETRY_MAX ({mt_settings.lock_retry_max()})"
        if exhausted.capped
        else ""
    )
    who = (
        f"It {waited_for}."
        if waited_for
        else "Another transaction holds a conflicting lock on the table (find it in "
        "pg_stat_activity / pg_locks)."
    )
    return (
        f"{label}: could not get a lock within lock_timeout ({mt_settings.lock_timeout()}); "
        f"{what} was tried {exhausted.attempts} times with backoff and jitter, waiting "
        f"{exhausted.waited:.1f}s in all{cap}. {who} {state} Run migrate again when "
        "the table is quieter (or once that session ends), or raise MIGTOOLS_LOCK_TIMEOUT."
    )


# -- what a timed-out concurrent index build leaves behind ---------------------------------


@dataclass(frozen=True)
class IndexBuild:
    """A concurrent index build read from its SQL: the table (schema-qualified or not) and
    the index whose INVALID leftovers a retry drops; ``transient`` for REINDEX (its
    ``*_ccnew``/``*_ccold`` copies), else the named index itself."""

    schema: str | None
    table: str | None
    index: str | None
    transient: bool


def index_build(sql: str) -> IndexBuild | None:
    """The concurrent index build ``sql`` runs, or None (not one, unnamed, unparsable)."""
    if "CONCURRENTLY" not in sql.upper():
        return None
    try:
        statements = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        return None
    if len(statements) != 1:
        return None
    stmt = statements[0].stmt
    if isinstance(stmt, ast.IndexStmt) and stmt.concurrent and stmt.idxname and stmt.relation:
        relation = stmt.relation
        return IndexBuild(relation.schemaname, relation.relname, stmt.idxname, False)
    if isinstance(stmt, ast.ReindexStmt) and stmt.relation is not None:
        concurrent = any(
            getattr(param, "defname", None) == "concurrently" for param in stmt.params or ()
        )
        if not concurrent:
            return None
        relation = stmt.relation
        if stmt.kind == ReindexObjectType.REINDEX_OBJECT_INDEX:
            return IndexBuild(relation.schemaname, None, relation.relname, True)
        if stmt.kind == ReindexObjectType.REINDEX_OBJECT_TABLE:
            return IndexBuild(relation.schemaname, relation.relname, None, True)
    return None


_INVALID_ON_TABLE = """
SELECT n.nspname, c.relname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid
  AND i.indrelid = %s
  AND i.indexrelid NOT IN (SELECT index_relid FROM pg_stat_progress_create_index)
ORDER BY c.relname
"""


def _regclass(connection: BaseDatabaseWrapper, schema: str | None, name: str) -> str:
    quote = connection.ops.quote_name
    return f"{quote(schema)}.{quote(name)}" if schema else quote(name)


def invalid_leftovers(connection: BaseDatabaseWrapper, build: IndexBuild) -> list[str]:
    """The INVALID indexes ``build`` left (qualified, quoted names), none being built now."""
    with connection.cursor() as cursor:
        if build.table is not None:
            cursor.execute(
                "SELECT to_regclass(%s)::oid", [_regclass(connection, build.schema, build.table)]
            )
        else:
            assert build.index is not None
            cursor.execute(
                "SELECT indrelid FROM pg_index WHERE indexrelid = to_regclass(%s)",
                [_regclass(connection, build.schema, build.index)],
            )
        row = cursor.fetchone()
        if not row or row[0] is None:
            return []
        cursor.execute(_INVALID_ON_TABLE, [row[0]])
        rows = cursor.fetchall()
    quote = connection.ops.quote_name
    found = []
    for schema, name in rows:
        if build.transient:
            match = _TRANSIENT.match(name)
            if match is None:
                continue
            base = match.group("base")
            # The base is the index's name, or its truncation when the name was long.
            truncated = len(name.encode()) >= 60 and build.index is not None
            if (
                build.index is not None
                and base != build.index
                and not (truncated and base and build.index.startswith(base))
            ):
                continue
        elif name != build.index:
            continue
        found.append(f"{quote(schema)}.{quote(name)}")
    return found


def drop_invalid_leftovers(
    connection: BaseDatabaseWrapper, sql: str, *, log: bool = True
) -> list[str]:
    """Drop the INVALID leftovers of the concurrent index build ``sql`` (outside a
    transaction; ``DROP INDEX CONCURRENTLY`` waits for the table's writers, so it can hit
    lock_timeout itself, which then counts as a failed attempt). Returns the names dropped."""
    build = index_build(sql)
    if build is None or connection.in_atomic_block:
        return []
    dropped: list[str] = []
    for name in invalid_leftovers(connection, build):
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        if log:
            logger.warning("migtools: dropped INVALID index %s left by a timed-out build", name)
        dropped.append(name)
    return dropped


def try_drop_invalid_leftovers(
    connection: BaseDatabaseWrapper, sql: str, dropped: list[str]
) -> list[str]:
    """After the last attempt: drop what it left (adding to ``dropped``); the INVALID
    leftovers that remain because the drop hit lock_timeout too."""
    try:
        dropped.extend(drop_invalid_leftovers(connection, sql))
    except Exception as exc:
        if not is_lock_timeout(exc):
            raise
        build = index_build(sql)
        return invalid_leftovers(connection, build) if build else []
    return []
