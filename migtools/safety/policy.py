"""Apply-time enforcement: which migrations migtools checks, and refusing with the catalogue's
why and recipe.

A migration is *checked* when it is a ``CheckedMigration`` (wherever it lives) or belongs to a
managed app (``MIGTOOLS_APPS``), unless it says ``checked = False`` or lies at or before the
app's ``MIGTOOLS_BASELINE`` migration. A managed app's migration that does not subclass
``CheckedMigration`` or does not state ``is_post_deployment`` is refused before anything runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from django.conf import settings as django_settings
from django.db.migrations import RunSQL

from migtools import conf as mt_settings
from migtools import project
from migtools.errors import UnsafeMigrationError
from migtools.migration import CheckedMigration
from migtools.rules import catalogue as rules

if TYPE_CHECKING:
    from django.db.migrations.migration import Migration

logger = logging.getLogger("migtools.apply")


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


def stage(migration: Migration | None, *, delete_phase: bool = False) -> rules.Stage:
    if delete_phase:
        return rules.Stage.DELETE_PHASE
    return rules.stage_of(migration)


def refuse(
    rule_id: str,
    migration: Migration | None,
    message: str,
    *,
    stage_: rules.Stage | None = None,
) -> None:
    """Raise ``UnsafeMigrationError`` unless the rule is off, ignored by the migration, only a
    warning (then log it) or allowed in this stage."""
    rule = rules.rule(rule_id)
    current = stage_ if stage_ is not None else rules.stage_of(migration)
    if current in rule.allowed_in:
        return
    level = rules.effective_level(rule_id, migration)
    if level is rules.Level.OFF:
        return
    if level is rules.Level.WARNING:
        logger.warning("migtools: %s: %s [%s] (warning only)", label(migration), message, rule_id)
        return
    steps = "\n".join(f"  {n}. {step}" for n, step in enumerate(rule.recipe, 1))
    raise UnsafeMigrationError(rule_id, label(migration), message, rule.why, steps)


def check_structure(migration: Migration) -> None:
    """A checked migration must subclass ``CheckedMigration`` and state ``is_post_deployment``."""
    if not isinstance(migration, CheckedMigration):
        refuse(
            "missing-is-post-deployment",
            migration,
            "does not subclass migtools.CheckedMigration (the app is managed by migtools)",
        )
    elif not type(migration).states_post_deployment():
        refuse("missing-is-post-deployment", migration, "does not state is_post_deployment")


def check_operations(migration: Migration) -> None:
    """Refusals decided from the operation objects alone, before any SQL runs."""
    for operation in migration.operations:
        if type(operation) is RunSQL:
            refuse(
                "run-sql-not-safe",
                migration,
                f"plain RunSQL ({operation.describe()}) runs unchecked SQL",
            )


def check_plan(plan: Iterable[tuple[Migration, bool]]) -> None:
    """Refuse a plan holding a checked migration that breaks the structural rules (before
    anything is applied). Unapplying is not structurally checked (old history)."""
    for migration, backwards in plan:
        if backwards or not is_checked(migration):
            continue
        check_structure(migration)
        check_operations(migration)
