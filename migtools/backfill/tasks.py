"""The Django Task that runs one range of a backfill (``MIGTOOLS_BACKFILL_RUNNER = "tasks"``).

``django.tasks`` on Django 6.x, the ``django-tasks`` backport (``pip install migtools[tasks]``)
on 5.2. Imported only when the tasks runner is used.
"""

from __future__ import annotations

import logging
from importlib.util import find_spec

from django.db import connections, transaction

from migtools import conf as mt_settings
from migtools.backfill import batches, progress, runners
from migtools.backfill.runners import Job
from migtools.errors import BackfillError

if find_spec("django.tasks"):
    from django.tasks import task  # type: ignore[import-not-found,unused-ignore]
else:  # pragma: no cover - depends on the installed Django
    try:
        from django_tasks import task  # type: ignore[import-not-found,no-redef,unused-ignore]
    except ImportError as exc:
        raise BackfillError(
            "MIGTOOLS_BACKFILL_RUNNER = 'tasks' needs Django Tasks: Django 6.x, or the "
            "django-tasks backport on Django 5.2 (pip install 'migtools[tasks]')."
        ) from exc


logger = logging.getLogger("migtools.backfill")


@task()  # type: ignore[untyped-decorator,unused-ignore]
def run_backfill_range(name: str, alias: str = "default") -> int:
    """Run one pending range of backfill ``name`` on database ``alias``; returns its rows."""
    job = runners.locate(name, alias)
    watch_later(job.name, job.alias)
    return runners.run_range(job)


@task()  # type: ignore[untyped-decorator,unused-ignore]
def watch_backfill(name: str, alias: str = "default") -> int:
    """The lease check: ranges whose worker died (lease expired) back to pending, one task
    enqueued for each; booked again while the backfill runs. Returns the ranges re-enqueued."""
    connection = connections[alias]
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        reaped = progress.reap(cursor, name)
        for _ in reaped:
            run_backfill_range.enqueue(name, alias)
    if reaped:
        logger.warning(
            "migtools: backfill %s: the lease of range(s) %s expired (worker gone); "
            "re-enqueued them",
            name,
            ", ".join(map(str, reaped)),
        )
    watch_later(name, alias)
    return len(reaped)


def watch_later(name: str, alias: str) -> None:
    """Book the next lease check of a running backfill (one at a time), a lease and a half
    from now. A backend that cannot run a task later gets none (``backfills --run`` finishes
    the ranges of dead workers)."""
    if not getattr(watch_backfill.get_backend(), "supports_defer", False):
        return
    connection = connections[alias]
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        at = progress.schedule_watch(cursor, name, mt_settings.backfill_lease() * 1.5)
        if at is not None:
            watch_backfill.using(run_after=at).enqueue(name, alias)


def enqueue(job: Job, *, defer: bool = False) -> int:
    """Record the backfill and its key ranges, then enqueue one task per pending range
    (``defer``: leave that to :func:`enqueue_recorded`, which ``migrate`` calls once its plan
    is applied, when the tasks backend's own tables exist). Returns the number of pending
    ranges (0 when the table is empty: done at once)."""
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
            runner="tasks",
            total=batches.estimate_rows(cursor, keys, quote),
        )
        record = progress.get(cursor, job.name, lock=True)
        assert record is not None
        if record.state == progress.DONE:
            return 0
        if not progress.has_ranges(cursor, job.name):
            ranges = batches.all_ranges(cursor, keys, job.batch_size, quote)
            progress.add_ranges(cursor, job.name, ranges)
            cursor.execute(
                f"UPDATE {progress.TABLE} SET total = %s WHERE name = %s",
                [sum(r[2] for r in ranges), job.name],
            )
        pending = progress.ranges_left(cursor, job.name)
        if pending == 0:
            progress.set_state(cursor, job.name, progress.DONE)
            return 0
        progress.set_state(cursor, job.name, progress.RUNNING)
        progress.set_enqueued(cursor, job.name, not defer)
    if not defer:
        # After the commit: a worker that starts at once must see the ranges.
        _enqueue_ranges(job.name, job.alias)
    return pending


def _enqueue_ranges(name: str, alias: str) -> None:
    with connections[alias].cursor() as cursor:
        pending = progress.pending_ranges(cursor, name)
    for _ in range(pending):
        run_backfill_range.enqueue(name, alias)
    watch_later(name, alias)


def enqueue_recorded(alias: str) -> list[str]:
    """Enqueue the tasks of every backfill recorded but not enqueued yet (``migrate`` calls
    this after its plan). Returns their names; a failure leaves them recorded for the next
    ``migrate`` and raises :class:`~migtools.errors.BackfillError`."""
    connection = connections[alias]
    if not progress.exists(connection):
        return []
    progress.ensure(connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT name FROM {progress.TABLE} WHERE NOT enqueued AND runner = 'tasks' "
            "AND state = %s ORDER BY name",
            [progress.RUNNING],
        )
        names = [str(r[0]) for r in cursor.fetchall()]
    done = []
    for name in names:
        try:
            with transaction.atomic(using=alias), connection.cursor() as cursor:
                progress.set_enqueued(cursor, name, True)
                _enqueue_ranges(name, alias)
        except Exception as exc:
            raise BackfillError(
                f"Backfill {name}: recorded, but its tasks could not be enqueued "
                f"({type(exc).__name__}: {' '.join(str(exc).split())}). Run migrate again once "
                "the tasks backend works (it enqueues them then), or finish it here: "
                f"`python manage.py backfills --run {name}`."
            ) from exc
        done.append(name)
    return done
