"""The Django Task that runs one range of a backfill (``MIGTOOLS_BACKFILL_RUNNER = "tasks"``).

``django.tasks`` on Django 6.x, the ``django-tasks`` backport (``pip install migtools[tasks]``)
on 5.2. Imported only when the tasks runner is used.
"""

from __future__ import annotations

from importlib.util import find_spec

from django.db import connections, transaction

from migtools.backfill import batches, progress, runners
from migtools.backfill.runners import Job

if find_spec("django.tasks"):
    from django.tasks import task  # type: ignore[import-not-found,unused-ignore]
else:  # pragma: no cover - depends on the installed Django
    try:
        from django_tasks import task  # type: ignore[import-not-found,no-redef,unused-ignore]
    except ImportError as exc:
        from migtools.errors import BackfillError

        raise BackfillError(
            "MIGTOOLS_BACKFILL_RUNNER = 'tasks' needs Django Tasks: Django 6.x, or the "
            "django-tasks backport on Django 5.2 (pip install 'migtools[tasks]')."
        ) from exc


@task()  # type: ignore[untyped-decorator,unused-ignore]
def run_backfill_range(name: str, alias: str = "default") -> int:
    """Run one pending range of backfill ``name`` on database ``alias``; returns its rows."""
    return runners.run_range(runners.locate(name, alias))


def enqueue(job: Job) -> int:
    """Record the backfill and its key ranges, then enqueue one task per pending range.
    Returns the number of tasks enqueued (0 when the table is empty: done at once)."""
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
    # After the commit: a worker that starts at once must see the ranges.
    for _ in range(pending):
        run_backfill_range.enqueue(job.name, job.alias)
    return pending
