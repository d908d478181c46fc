"""``TestMigrations``: the unittest-style base class of a data-migration test, one
``Migrator`` round trip per test method."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import DEFAULT_DB_ALIAS
from django.db.migrations.state import StateApps
from django.test import TransactionTestCase

from migtools.testing.migrator import Migrator

__all__ = ["TestMigrations"]


class TestMigrations(TransactionTestCase):
    """Test a data migration: seed at ``migrate_from``, assert at ``migrate_to``.

    ``app`` (default: ``MIGTOOLS_DEFAULT_APP``), ``migrate_from``, ``migrate_to`` and
    ``connection`` (alias, default ``"default"``) are class attributes. Each ``test_*`` method
    gets its own fresh copy of the database at ``migrate_from``, so several methods are fine.
    """

    app: ClassVar[str | None] = None
    migrate_from: ClassVar[str | None] = None
    migrate_to: ClassVar[str | None] = None
    connection: ClassVar[str] = DEFAULT_DB_ALIAS

    apps: StateApps
    migrator: Migrator

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "databases" not in cls.__dict__:
            cls.databases = {DEFAULT_DB_ALIAS, cls.connection}

    def setUp(self) -> None:
        super().setUp()
        owner = type(self).__qualname__
        self.migrator = Migrator(owner)
        self.addCleanup(self.migrator.reset)
        overridden = type(self).setup_initial_state is not TestMigrations.setup_initial_state
        before_apps = self.migrator.before(
            self.migrate_from,
            app=self.app,
            connection=self.connection,
            initial_state=self.setup_initial_state if overridden else None,
            migrate_to=self.migrate_to,
        )
        self.migrator.check_target(self.migrate_to)  # before seeding: fail fast
        self.setup_before_migration(before_apps)
        self.apps = self.migrator.after(self.migrate_to)

    def setup_initial_state(self) -> None:
        """Runs at head on the test's copy (current models, factories). Optional."""

    def setup_before_migration(self, apps: StateApps) -> None:
        """Seed rows through ``apps.get_model(...)``: the historical models at migrate_from."""

    def _fixture_teardown(self) -> None:
        # Never flush: the test ran on a copy that is already dropped, and flushing the test
        # database would delete what data migrations seeded (django-test-migrations #438).
        pass
