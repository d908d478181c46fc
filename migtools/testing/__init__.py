"""Testing data migrations (public path ``migtools.testing``): ``TestMigrations``, the base
class, and ``Migrator``, the engine behind it and the pytest fixture ``migtools_migrator``.

Modules, one noun each: ``case`` (TestMigrations), ``migrator`` (Migrator), ``history`` (the
migration graph the tests load once), ``rollback`` (the rolled-back transaction of a test on a
warm copy), ``snapshot`` (template databases), ``walk`` (the fast paths: private Django API,
off with ``MIGTOOLS_FAST_PATHS = False``)."""

from __future__ import annotations

from migtools.errors import MigrationTestError
from migtools.testing.case import TestMigrations
from migtools.testing.migrator import Migrator

__all__ = ["MigrationTestError", "Migrator", "TestMigrations"]
