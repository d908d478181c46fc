"""migtools: a Django migration workflow for busy repositories on PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["CheckedMigration", "__version__"]

if TYPE_CHECKING:
    from migtools.migration import CheckedMigration


def __getattr__(name: str) -> Any:
    # Lazy, so that importing migtools (e.g. the pytest plugin) does not import django.db.
    if name == "CheckedMigration":
        from migtools.migration import CheckedMigration

        return CheckedMigration
    raise AttributeError(name)
