"""Safe migration operations (public path: migration files import it). Thin re-exports."""

from __future__ import annotations

from migtools.backfill.operation import EnsureBackfilled as EnsureBackfilled
from migtools.backfill.operation import RunBackfill as RunBackfill
from migtools.safety.deletion import DeletionAction as DeletionAction
from migtools.safety.deletion import SafeDeleteModel as SafeDeleteModel
from migtools.safety.deletion import SafeRemoveField as SafeRemoveField
from migtools.safety.deletion import resolve_database as resolve_database
from migtools.safety.runsql import SafeRunSQL as SafeRunSQL

__all__ = [
    "DeletionAction",
    "EnsureBackfilled",
    "RunBackfill",
    "SafeDeleteModel",
    "SafeRemoveField",
    "SafeRunSQL",
    "resolve_database",
]
