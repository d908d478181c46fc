"""Which migrations migtools checks on apply.

A migration is *checked* when it is a ``CheckedMigration`` (wherever it lives) or belongs to a
managed app (``MIGTOOLS_APPS``), unless it says ``checked = False`` or lies at or before the
app's ``MIGTOOLS_BASELINE`` migration. What a checked migration may do is decided by the rule
engine (``migtools.rules.engine``): ``migrate``'s preflight (``migtools.safety.preflight``)
and the editor's apply-time backstop both call it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING

from django.conf import settings as django_settings

from migtools import conf as mt_settings
from migtools import project
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
    """True when the migration is the app's ``MIGTOOLS_BASELINE`` migration or before it."""
    name = mt_settings.baseline().get(migration.app_label)
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


# Tables the plan ``migrate`` is applying creates, per database alias: the preflight judged the
# plan as one deploy (a table created anywhere in it is new), and the apply-time backstop
# judges each migration of it the same way.
_DEPLOY_NEW_TABLES: dict[str, frozenset[str]] = {}


@contextmanager
def deploying(alias: str, new_tables: Iterable[str]) -> Iterator[None]:
    """While ``migrate`` applies a plan its preflight passed: the plan's new tables."""
    before = _DEPLOY_NEW_TABLES.get(alias)
    _DEPLOY_NEW_TABLES[alias] = frozenset(new_tables)
    try:
        yield
    finally:
        if before is None:
            _DEPLOY_NEW_TABLES.pop(alias, None)
        else:
            _DEPLOY_NEW_TABLES[alias] = before


def deploy_new_tables(alias: str) -> frozenset[str]:
    return _DEPLOY_NEW_TABLES.get(alias, frozenset())


def is_deploying(alias: str) -> bool:
    """``migrate`` is applying a plan on this alias."""
    return alias in _DEPLOY_NEW_TABLES
