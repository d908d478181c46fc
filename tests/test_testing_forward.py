"""migtools.testing.forward: a migration test whose ``migrate_from`` lies behind migrations
that cannot run backwards builds its state forwards, once, then copies the snapshot.

The ``oneway`` test app: 0002 backfills ``status`` (the migration under test), 0003 is a
RunPython without reverse_code, 0004 a RunSQL without reverse_sql, 0005 adds ``closed``, 0006
a custom operation that declares itself reversible and refuses to run backwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import StateApps

from migtools.testing import MigrationTestError, Migrator, TestMigrations, history, snapshot, walk


def _oneway_applied() -> list[str]:
    applied = MigrationRecorder(connections["default"]).applied_migrations()
    return sorted(name for app, name in applied if app == "oneway")


def _columns(table: str) -> list[str]:
    connection = connections["default"]
    with connection.cursor() as cursor:
        return [c.name for c in connection.introspection.get_table_description(cursor, table)]


def _indexes(table: str) -> set[str]:
    connection = connections["default"]
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, table))


class TestBehindIrreversible(TestMigrations):
    """migrate_from = 0001: the walk back from head would meet 0004 (RunSQL) and 0003
    (RunPython), neither reversible; the state at 0001 is built forwards instead."""

    app = "oneway"
    migrate_from = "0001_initial"
    migrate_to = "0002_backfill_status"

    def setup_before_migration(self, apps: StateApps) -> None:
        assert _oneway_applied() == ["0001_initial"]
        assert _columns("oneway_ticket") == ["id", "title", "status"]
        assert "oneway_ticket_status_sql" not in _indexes("oneway_ticket")
        ticket = apps.get_model("oneway", "Ticket")
        assert not ticket.objects.exists()  # an empty table, as at 0001
        self.pks = [
            ticket.objects.create(title="a", status=None).pk,
            ticket.objects.create(title="b", status="closed").pk,
        ]

    def test_backfill(self) -> None:
        ticket = self.apps.get_model("oneway", "Ticket")
        statuses = [ticket.objects.get(pk=pk).status for pk in self.pks]
        assert statuses == ["open", "closed"]
        assert ticket.objects.get(pk=self.pks[0]).title == "a"  # 0003 did not run
        assert _oneway_applied() == ["0001_initial", "0002_backfill_status"]

    def test_second_method_same_start(self) -> None:
        ticket = self.apps.get_model("oneway", "Ticket")
        assert ticket.objects.count() == 2
        # Other apps stay at head, as after a walk back: ledger's seed is there.
        currency = self.apps.get_model("ledger", "Currency")
        assert sorted(currency.objects.values_list("code", flat=True)) == ["EUR", "USD"]


def test_built_forwards_once() -> None:
    """Each class above built its snapshot forwards, once for its two methods (pytest-django
    runs the TestCase classes of a module before its functions)."""
    totals = snapshot.totals()
    store = snapshot.store_for(connections["default"])
    fingerprint = history.load().fingerprint
    for target in ("oneway.0001_initial", "oneway.0005_ticket_closed"):
        name = store.snapshot_name(fingerprint, target)
        assert totals.forward.count(name) == 1, (target, totals)
        assert totals.built.count(name) == 1, (target, totals)


@pytest.mark.django_db
def test_irreversible_read_from_the_operations() -> None:
    """Detected before touching a database: the first operation met on the way back."""
    graph = history.load()
    recorded = history.recorded(connections["default"])
    assert walk.irreversible(graph, recorded, ("oneway", "0001_initial")) == (
        "oneway.0004_status_index: Raw SQL operation"
    )
    assert walk.irreversible(graph, recorded, ("oneway", "0002_backfill_status")) == (
        "oneway.0004_status_index: Raw SQL operation"
    )
    # 0005 and 0006 say they are reversible (0006 wrongly: only trying tells, and the walk
    # falls back then).
    assert walk.irreversible(graph, recorded, ("oneway", "0004_status_index")) is None


class TestBehindAFalselyReversibleOperation(TestMigrations):
    """migrate_from = 0005: 0006 declares itself reversible and raises NotImplementedError
    backwards; the walk back starts, fails, and the snapshot is built forwards."""

    app = "oneway"
    migrate_from = "0005_ticket_closed"
    migrate_to = "0006_stamp_comment"

    def setup_before_migration(self, apps: StateApps) -> None:
        assert _oneway_applied()[-1] == "0005_ticket_closed"
        assert "oneway_ticket_status_sql" in _indexes("oneway_ticket")  # 0004 ran forwards
        self.forward_before = len(snapshot.totals().forward)

    def test_comment_stamped(self) -> None:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT obj_description('oneway_ticket'::regclass, 'pg_class')")
            assert cursor.fetchone() == ("tickets",)


def test_initial_state_behind_irreversible_is_refused(migtools_migrator: Migrator) -> None:
    """Rows created at head cannot be carried back past 0004: one clear error naming it."""
    with pytest.raises(MigrationTestError, match=r"0004_status_index: Raw SQL operation"):
        migtools_migrator.before("0001_initial", app="oneway", initial_state=lambda: None)


@pytest.fixture(params=[True, False], ids=["fast-paths", "django-paths"])
def fast_paths(
    request: pytest.FixtureRequest, settings: Any, django_db_setup: None
) -> Iterator[bool]:
    settings.MIGTOOLS_FAST_PATHS = request.param
    yield request.param
    snapshot.store_for(connections["default"]).drop_all()


def test_forward_build_both_ways(fast_paths: bool, migtools_migrator: Migrator) -> None:
    """With Django's own executor too (MIGTOOLS_FAST_PATHS = False): the state at 0002 is
    built forwards, rows seeded there go through 0003 (the irreversible RunPython)."""
    before = len(snapshot.totals().forward)
    apps = migtools_migrator.before("0002_backfill_status", app="oneway")
    assert len(snapshot.totals().forward) == before + 1
    assert _oneway_applied() == ["0001_initial", "0002_backfill_status"]
    ticket = apps.get_model("oneway", "Ticket")
    pk = ticket.objects.create(title="mixed Case", status="open").pk
    after = migtools_migrator.after("0003_normalise_titles")
    assert after.get_model("oneway", "Ticket").objects.get(pk=pk).title == "MIXED CASE"
    migtools_migrator.reset()
    assert "0006_stamp_comment" in _oneway_applied()  # the test database, at head
