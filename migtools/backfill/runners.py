"""Running a backfill: inline (batch after batch in this process) or on a worker fleet
(key ranges recorded once, one Django Task per range, claimed with ``SKIP LOCKED``).

Every batch is one short transaction: ``SET LOCAL`` lock and statement timeouts (nothing leaks
past the batch), the user's function on one key range, the progress row or the range row
updated, commit. A killed process loses at most the batch it was in, and no batch is applied
twice: the next run starts after the last committed key.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import connections, transaction

from migtools import conf as mt_settings
from migtools.backfill import batches, progress
from migtools.backfill.display import Display
from migtools.dberrors import sqlstate
from migtools.errors import BackfillError

if TYPE_CHECKING:
    from django.apps.registry import Apps
    from django.db.backends.utils import CursorWrapper
    from django.db.models import Model, Q

logger = logging.getLogger("migtools.backfill")

REVERSE = "~reverse"  # suffix of the name of a backfill's reverse walk

_inline = contextvars.ContextVar("migtools_backfill_inline", default=False)


@contextlib.contextmanager
def inline_only() -> Iterator[None]:
    """Run every backfill inline and synchronously, whatever ``MIGTOOLS_BACKFILL_RUNNER``
    says (``TestMigrations`` does this, so a backfill is tested like a ``RunPython``)."""
    token = _inline.set(True)
    try:
        yield
    finally:
        _inline.reset(token)


def runner() -> str:
    return "inline" if _inline.get() else mt_settings.backfill_runner()


@dataclass
class Job:
    """One backfill, ready to run: the historical model and apps, the function, the knobs."""

    name: str
    app_label: str
    migration: str
    model: type[Model]
    apps: Apps
    function: Callable[[Apps, Any], Any]
    filter: Q | None
    batch_size: int
    pause: float
    batch_time: float | None
    alias: str

    @property
    def keys(self) -> batches.Keys:
        return batches.keys_of(self.model, self.name)

    @property
    def label(self) -> str:
        return str(self.model._meta.label)


def _timeouts(cursor: CursorWrapper) -> None:
    """The batch's lock and statement timeouts, for this transaction only."""
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [mt_settings.lock_timeout()])
    statement = mt_settings.statement_timeout(False) or "0"
    cursor.execute("SELECT set_config('statement_timeout', %s, true)", [statement])


def _explain(job: Job, exc: BaseException, after: str | None) -> str:
    state = sqlstate(exc)
    where = f"after key {after}" if after is not None else "from the first key"
    if state == "57014":
        cause = (
            f"the batch hit statement_timeout ({mt_settings.statement_timeout(False)}): "
            "lower batch_size= or set batch_time= so batches stay short"
        )
    elif state == "55P03":
        cause = f"the batch could not get its row locks within lock_timeout ({mt_settings.lock_timeout()})"
    else:
        cause = f"{type(exc).__name__}: {exc}".strip()
    return (
        f"Backfill {job.name} ({job.label}): the batch {where} failed: {cause}. Every earlier "
        f"batch is committed; run migrate again (or `manage.py backfills --run {job.name}`) "
        "to resume after the last committed key."
    )


def _fail(job: Job, message: str) -> None:
    with transaction.atomic(using=job.alias), connections[job.alias].cursor() as cursor:
        progress.set_state(cursor, job.name, progress.FAILED, error=message)


class LeaseLost(Exception):
    """The range's lease expired and another worker took it: this batch is rolled back."""


def _with_retries(job: Job, attempt: Callable[[], Any], after: Callable[[], str | None]) -> Any:
    """Run one batch; lock timeouts are retried with backoff, anything else fails the run."""
    retries = mt_settings.lock_retries()
    delay = mt_settings.lock_retry_delay()
    for n in range(retries + 1):
        try:
            return attempt()
        except LeaseLost:
            raise
        except Exception as exc:
            if sqlstate(exc) == "55P03" and n < retries:
                time.sleep(delay * 2**n)
                continue
            message = _explain(job, exc, after())
            _fail(job, message)
            raise BackfillError(message) from exc
    raise AssertionError("unreachable")


def _adapt(job: Job, size: int, seconds: float) -> int:
    """The next batch size for ``batch_time``: towards the target, at most doubling or halving."""
    if job.batch_time is None or seconds <= 0:
        return size
    wanted = int(size * job.batch_time / seconds)
    return max(1, min(size * 2, max(size // 2, wanted)))


# -- inline --------------------------------------------------------------------------------


def run_inline(job: Job, stream: Any = None) -> progress.Backfill:
    """Walk the key from the last committed key to the end, batch by batch."""
    connection = connections[job.alias]
    keys = job.keys
    quote = connection.ops.quote_name
    progress.ensure(connection)
    with transaction.atomic(using=job.alias), connection.cursor() as cursor:
        progress.start(
            cursor,
            name=job.name,
            app_label=job.app_label,
            migration=job.migration,
            model=job.label,
            runner="inline",
            total=batches.estimate_rows(cursor, keys, quote),
        )
    with connection.cursor() as cursor:
        progress.lock_run(cursor, job.name)
    try:
        return _walk(job, keys, stream)
    finally:
        with connection.cursor() as cursor:
            progress.unlock_run(cursor, job.name)


def _walk(job: Job, keys: batches.Keys, stream: Any) -> progress.Backfill:
    connection = connections[job.alias]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        record = progress.get(cursor, job.name)
    assert record is not None
    if record.state == progress.DONE:
        return record
    display = Display(job.name, record.total, stream)
    size = job.batch_size
    rows = record.rows
    last: list[str | None] = [record.last_key]

    def one() -> tuple[int, float]:
        with transaction.atomic(using=job.alias), connection.cursor() as cursor:
            _timeouts(cursor)
            row = progress.get(cursor, job.name, lock=True)
            assert row is not None
            last[0] = row.last_key
            count, hi = batches.next_range(cursor, keys, row.last_key, size, quote)
            if count == 0 or hi is None:
                progress.set_state(cursor, job.name, progress.DONE)
                return 0, 0.0
            started = time.monotonic()
            job.function(
                job.apps, batches.batch(job.model, keys, row.last_key, hi, job.alias, job.filter)
            )
            seconds = time.monotonic() - started
            progress.advance(cursor, job.name, hi, count, seconds)
            return count, seconds

    while True:
        count, seconds = _with_retries(job, one, lambda: last[0])
        if count == 0:
            break
        rows += count
        display.update(rows)
        size = _adapt(job, size, seconds)
        if job.pause:
            time.sleep(job.pause)
    display.finish(rows, progress.DONE)
    with connection.cursor() as cursor:
        final = progress.get(cursor, job.name)
    assert final is not None
    return final


# -- tasks: one range per call ---------------------------------------------------------------


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _Heartbeat(threading.Thread):
    """Renews a range's lease every third of it, on its own connection, until stopped."""

    def __init__(self, job: Job, seq: int, token: str, lease: float) -> None:
        super().__init__(name=f"migtools-lease-{job.name}-{seq}", daemon=True)
        self.job, self.seq, self.token, self.lease = job, seq, token, lease
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.lease / 3):
                try:
                    with connections[self.job.alias].cursor() as cursor:
                        if not progress.renew_lease(
                            cursor, self.job.name, self.seq, self.token, self.lease
                        ):
                            return
                except Exception:  # the next renewal tries again; the lease may expire
                    logger.warning(
                        "migtools: backfill %s: could not renew the lease of range %d",
                        self.job.name,
                        self.seq,
                        exc_info=True,
                    )
        finally:
            connections[self.job.alias].close()

    def stop(self) -> None:
        self.stopped.set()
        self.join()


def run_range(job: Job) -> int:
    """Lease one pending range (two workers never take the same one), run it with the lease
    renewed by a heartbeat, and mark it done in the batch's transaction, if the lease is still
    this worker's (else the batch rolls back: every row is touched once). Returns the rows of
    the range (0: none pending)."""
    connection = connections[job.alias]
    keys = job.keys
    lease = mt_settings.backfill_lease()
    token = uuid.uuid4().hex
    worker = worker_id()
    with transaction.atomic(using=job.alias), connection.cursor() as cursor:
        claim = progress.lease_range(cursor, job.name, worker, token, lease)
    if claim is None:
        _done_if_finished(job)
        return 0
    seq, lo, hi, rows = claim

    def one() -> int:
        with transaction.atomic(using=job.alias), connection.cursor() as cursor:
            _timeouts(cursor)
            started = time.monotonic()
            job.function(job.apps, batches.batch(job.model, keys, lo, hi, job.alias, job.filter))
            seconds = time.monotonic() - started
            if not progress.finish_range(cursor, job.name, seq, token, seconds, worker):
                raise LeaseLost(seq)
            return rows

    heartbeat = _Heartbeat(job, seq, token, lease)
    heartbeat.start()
    try:
        done = int(_with_retries(job, one, lambda: lo))
    except LeaseLost:
        logger.warning(
            "migtools: backfill %s: range %d was leased to another worker (this one's lease "
            "expired); rolled this run of it back",
            job.name,
            seq,
        )
        return 0
    except BaseException:
        with contextlib.suppress(Exception), connection.cursor() as cursor:
            progress.release_range(cursor, job.name, seq, token)
        raise
    finally:
        heartbeat.stop()
    _done_if_finished(job)
    if job.pause and done:
        time.sleep(job.pause)
    return done


def _done_if_finished(job: Job) -> None:
    with transaction.atomic(using=job.alias), connections[job.alias].cursor() as cursor:
        if progress.ranges_left(cursor, job.name) == 0:
            progress.set_state(cursor, job.name, progress.DONE)


def finish(job: Job, stream: Any = None) -> progress.Backfill:
    """Finish a backfill here and now (``manage.py backfills --run``): the inline walk, or
    every range no worker holds."""
    connection = connections[job.alias]
    with connection.cursor() as cursor:
        record = progress.get(cursor, job.name)
    if record is None or record.runner == "inline":
        return run_inline(job, stream)
    display = Display(job.name, record.total, stream)
    done = record.rows
    with transaction.atomic(using=job.alias), connection.cursor() as cursor:
        progress.set_state(cursor, job.name, progress.RUNNING)
        progress.reap(cursor, job.name)  # ranges of dead workers: finished here
    while True:
        rows = run_range(job)
        if rows == 0:
            break
        done += rows
        display.update(done)
    with connection.cursor() as cursor:
        left = progress.ranges_left(cursor, job.name)
    final = progress.find(connection, job.name)
    assert final is not None
    if left:
        raise BackfillError(
            f"Backfill {job.name}: {left} range(s) are held by running workers; they will "
            "finish them (or run this again once they stop)."
        )
    display.finish(done, final.state)
    return final


_located: dict[tuple[str, str], Job] = {}


def locate(name: str, alias: str = "default") -> Job:
    """The job of a recorded backfill: its migration loaded, the historical apps just before
    its operation (for workers and ``backfills --run``). A worker process loads the migration
    graph once per backfill, not once per range."""
    job = _located.get((name, alias))
    if job is None:
        job = _located[name, alias] = _locate(name, alias)
    return job


def _locate(name: str, alias: str) -> Job:
    from django.db.migrations.loader import MigrationLoader

    connection = connections[alias]
    records = {b.name: b for b in progress.all_backfills(connection)}
    record = records.get(name)
    if record is None:
        known = ", ".join(sorted(records)) or "none recorded"
        raise BackfillError(f"No backfill named {name!r} on database {alias!r} ({known}).")
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    key = (record.app_label, record.migration)
    if key not in loader.graph.nodes:
        raise BackfillError(f"Backfill {name}: migration {key[0]}.{key[1]} is not on disk.")
    migration = loader.graph.nodes[key]
    state = loader.project_state(key, at_end=False)
    reverse = name.endswith(REVERSE)
    for op in migration.operations:
        if getattr(op, "migtools_backfill", False):
            base = op.backfill_name(*key)
            if base == name or (reverse and base + REVERSE == name):
                if reverse:
                    return op.job(*key, state.apps, alias, op.reverse, REVERSE)  # type: ignore[no-any-return]
                return op.job(*key, state.apps, alias)  # type: ignore[no-any-return]
        op.state_forwards(record.app_label, state)
    raise BackfillError(f"Backfill {name}: {key[0]}.{key[1]} no longer holds it.")
