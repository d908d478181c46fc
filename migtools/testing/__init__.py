"""Testing data migrations (public path ``migtools.testing``): ``TestMigrations``, the base
class, and ``Migrator``, the engine behind it and the pytest fixture ``migtools_migrator``."""

from __future__ import annotations

from migtools.errors import MigrationTestError
from migtools.testing.migrator import Migrator, TestMigrations

__all__ = ["MigrationTestError", "Migrator", "TestMigrations"]
