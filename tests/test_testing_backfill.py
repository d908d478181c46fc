"""TestMigrations runs a RunBackfill migration inline and synchronously, like a RunPython,
whatever MIGTOOLS_BACKFILL_RUNNER says."""

from __future__ import annotations

from django.db import connection
from django.db.migrations.state import StateApps
from django.test import override_settings

from migtools.testing import TestMigrations


@override_settings(MIGTOOLS_BACKFILL_RUNNER="tasks")
class TestCountUp(TestMigrations):
    app = "tally"
    migrate_from = "0001_initial"
    migrate_to = "0002_count_up"

    def setup_before_migration(self, apps: StateApps) -> None:
        counter = apps.get_model("tally", "Counter")
        counter.objects.bulk_create([counter() for _ in range(30)])

    def test_every_row_counted_once(self) -> None:
        counter = self.apps.get_model("tally", "Counter")
        assert sorted(set(counter.objects.values_list("n", "label"))) == [(1, "counted")]
        assert counter.objects.count() == 30
        with connection.cursor() as cursor:
            cursor.execute("SELECT state, rows, batches, runner FROM migtools_backfill")
            assert cursor.fetchall() == [("done", 30, 5, "inline")]
