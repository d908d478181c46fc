"""The inline runner in-process on the test database: timeouts are SET LOCAL (nothing leaks),
a row lock held by another session hits lock_timeout and the run resumes once it is released,
batch_time adapts the batch size, pause throttles, and the progress display."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.apps import apps as global_apps
from django.db import connection
from django.test import override_settings

from migtools.backfill import progress, runners
from migtools.backfill.display import Display, line
from migtools.errors import BackfillError
from tests.safety_helpers import server_conninfo


@pytest.fixture
def counters(django_db_setup: None, django_db_blocker: Any) -> Iterator[Any]:
    """40 rows on the test database in autocommit (the runner commits batch by batch), removed
    afterwards: no flush, which would also empty what the test apps' migrations seeded."""
    model = global_apps.get_model("tally", "Counter")
    with django_db_blocker.unblock():
        model.objects.bulk_create([model() for _ in range(40)])
        try:
            yield model
        finally:
            model.objects.all().delete()
            progress.ensure(connection)
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {progress.TABLE} WHERE name LIKE 'test.%%'")


def _job(model: Any, function: Any, name: str, **kwargs: Any) -> runners.Job:
    values: dict[str, Any] = {
        "name": f"test.{name}",
        "app_label": "tally",
        "migration": "test",
        "model": model,
        "apps": global_apps,
        "function": function,
        "filter": None,
        "batch_size": 10,
        "pause": 0.0,
        "batch_time": None,
        "alias": "default",
        **kwargs,
    }
    return runners.Job(**values)


def _setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s)", [name])
        return str(cursor.fetchone()[0])


@override_settings(MIGTOOLS_STATEMENT_TIMEOUT="750ms", MIGTOOLS_LOCK_TIMEOUT="250ms")
def test_timeouts_are_local_to_each_batch(counters: Any) -> None:
    before = (_setting("statement_timeout"), _setting("lock_timeout"))
    seen: list[tuple[str, str]] = []

    def record(apps: Any, batch: Any) -> None:
        seen.append((_setting("statement_timeout"), _setting("lock_timeout")))
        batch.update(n=1)

    record_ = runners.run_inline(_job(counters, record, "timeouts"), io.StringIO())
    assert record_.state == "done" and record_.rows == 40 and record_.batches == 4
    assert seen == [("750ms", "250ms")] * 4
    assert (_setting("statement_timeout"), _setting("lock_timeout")) == before


@override_settings(
    MIGTOOLS_LOCK_TIMEOUT="100ms", MIGTOOLS_LOCK_RETRIES=1, MIGTOOLS_LOCK_RETRY_DELAY="50ms"
)
def test_row_lock_held_elsewhere_fails_clearly_then_resumes(counters: Any) -> None:
    ids = list(counters.objects.order_by("pk").values_list("pk", flat=True))
    job = _job(counters, lambda apps, batch: batch.update(n=1), "locked")
    with psycopg.connect(server_conninfo(connection.settings_dict["NAME"])) as other:
        other.execute("SELECT 1 FROM tally_counter WHERE id = %s FOR UPDATE", (ids[25],))
        with pytest.raises(BackfillError) as caught:
            runners.run_inline(job, io.StringIO())
        other.rollback()
    message = str(caught.value)
    assert (
        f"the batch after key {ids[19]} failed: the batch could not get its row locks within lock_timeout (100ms)"
        in message
    )
    assert sorted(counters.objects.values_list("n", flat=True)) == [0] * 20 + [1] * 20
    with connection.cursor() as cursor:
        failed = progress.get(cursor, job.name)
    assert failed is not None and (failed.state, failed.rows) == ("failed", 20)
    assert failed.last_error == message
    done = runners.run_inline(job, io.StringIO())
    assert (done.state, done.rows, done.last_error) == ("done", 40, None)
    assert set(counters.objects.values_list("n", flat=True)) == {1}


def test_batch_time_adapts_the_batch_size_and_pause_throttles(counters: Any) -> None:
    sizes: list[int] = []

    def slow(apps: Any, batch: Any) -> None:
        rows = batch.count()
        sizes.append(rows)
        time.sleep(rows * 0.004)  # 10 rows: 40 ms, twice the 20 ms target
        batch.update(n=1)

    started = time.monotonic()
    runners.run_inline(_job(counters, slow, "adapt", batch_time=0.02, pause=0.05), io.StringIO())
    took = time.monotonic() - started
    assert sizes[:2] == [10, 5]  # halved towards the target at once
    assert sum(sizes) == 40
    assert took >= 0.05 * len(sizes)  # a pause after every batch
    assert set(counters.objects.values_list("n", flat=True)) == {1}


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_display_bar_on_a_tty_and_lines_otherwise() -> None:
    assert (
        line("app.0002", 500, 2000, 2.0) == "app.0002: 500 / 2,000 rows (25.0%), 250 rows/s, ETA 6s"
    )
    tty = _Tty()
    bar = Display("app.0002", 100, tty)
    bar.update(50)
    assert tty.getvalue().startswith(
        "\r  [###############---------------] app.0002: 50 / 100 rows (50.0%)"
    )
    plain = io.StringIO()
    lines = Display("app.0002", 100, plain)
    lines.update(10)
    lines.update(20)  # within `every` seconds of the last line: not printed
    lines.finish(100, "done")
    out = plain.getvalue().splitlines()
    assert len(out) == 2
    assert out[0].startswith("  backfill app.0002: 10 / 100 rows (10.0%)")
    assert out[1].startswith("  backfill app.0002: 100 rows") and out[1].endswith(": done")
