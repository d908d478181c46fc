"""pytest plugin (entry point ``pytest11``): migration-test support lands with TestMigrations."""

from __future__ import annotations
