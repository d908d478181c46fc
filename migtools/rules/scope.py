"""Which migrations migtools checks.

A migration is *checked* when it is a ``CheckedMigration`` (wherever it lives) or belongs to a
managed app (``MIGTOOLS_APPS``), unless it says ``checked = False`` or lies at or before the
app's ``MIGTOOLS_BASELINE`` migration. What a checked migration may do is decided by the rule
engine (``migtools.rules.engine``): ``migrate``'s preflight (``migtools.safety.preflight``),
the editor's apply-time backstop and the verifier all ask this module which migrations count.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from django.conf import settings as django_settings

from migtools import project
from migtools.graph import baseline
from migtools.migration import CheckedMigration

if TYPE_CHECKING:
    from django.db.migrations.migration import Migration


def label(migration: Migration | None) -> str:
    if migration is None:
        return "(no migration)"
    return f"{migration.app_label}.{migration.name}"


@lru_cache(maxsize=64)
def _baseline_keys(app_label: str, name: str, modules: str) -> frozenset[tuple[str, str]]:
    from migtools.graph import disk as graph

    disk = graph.load([app_label])
    key = (app_label, name)
    return frozenset(k for k in (*disk.ancestors(key), key) if k[0] == app_label)


def in_baseline(migration: Migration) -> bool:
    """True when the migration is the app's baseline migration or before it (the adoption
    baseline file, ``MIGTOOLS_BASELINE`` overriding it: ``migtools.graph.baseline``)."""
    name = baseline.effective().get(migration.app_label)
    if not name:
        return False
    if migration.name == name:
        return True
    modules = repr(getattr(django_settings, "MIGRATION_MODULES", {}))
    return (migration.app_label, migration.name) in _baseline_keys(
        migration.app_label, name, modules
    )


def managed_labels() -> frozenset[str]:
    return frozenset(c.label for c in project.managed_apps())


def is_checked(migration: Migration) -> bool:
    if isinstance(migration, CheckedMigration):
        if not migration.checked:
            return False
    elif migration.app_label not in managed_labels():
        return False
    return not in_baseline(migration)
