"""``--update-applied``: which moved migrations the database records as applied, and rolling them
back with the graph as it is on disk now (their reverse operations), before they are renamed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from migtools import dberrors
from migtools.errors import AppliedMigrationsError, DatabaseUnavailableError
from migtools.renamer.plan import Key, fmt

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration

Step = tuple["Migration", bool]


@dataclass
class Applied:
    """What the database says about the moved migrations."""

    alias: str
    applied: list[Key] = field(default_factory=list)
    unavailable: str | None = None  # why the database could not be asked (None: it was)
    configured: bool = True  # False: DATABASES is empty (Django's dummy backend)


def connection_for(alias: str) -> BaseDatabaseWrapper:
    from django.db import connections

    if alias not in connections.settings:
        raise dberrors.unknown_alias(alias)
    return connections[alias]


def applied_moved(moved: Iterable[Key], connection: BaseDatabaseWrapper) -> Applied:
    """The moved migrations that ``connection`` records as applied."""
    from django.core.exceptions import ImproperlyConfigured
    from django.db import DatabaseError
    from django.db.migrations.recorder import MigrationRecorder

    result = Applied(connection.alias)
    moved = list(moved)
    if not moved:
        return result
    try:
        recorder = MigrationRecorder(connection)
        if not recorder.has_table():
            return result
        recorded = set(recorder.applied_migrations())
    except (DatabaseError, ImproperlyConfigured, OSError) as exc:
        result.unavailable = dberrors.unreachable(connection, exc)
        result.configured = connection.settings_dict.get("ENGINE") != "django.db.backends.dummy"
        return result
    result.applied = [key for key in moved if key in recorded]
    return result


def require(applied: Applied) -> None:
    """--update-applied cannot work without the database: one line naming the problem."""
    if applied.unavailable is not None:
        raise DatabaseUnavailableError(
            f"--update-applied needs the database, but {applied.unavailable}. Nothing was changed."
        )


def rollback_plan(applied: list[Key], connection: BaseDatabaseWrapper) -> list[Step]:
    """The backwards plan that unapplies ``applied`` (and what depends on them) with the graph
    on disk now; refuses, with the recipe, when one of them is irreversible."""
    from django.db.migrations.executor import MigrationExecutor

    if not applied:
        return []
    executor = MigrationExecutor(connection)
    graph = executor.loader.graph
    recorded = executor.loader.applied_migrations or {}
    steps: list[Step] = []
    seen: set[Key] = set()
    for key in applied:
        for node in graph.backwards_plan(key):
            if node in recorded and node not in seen:
                seen.add(node)
                steps.append((graph.nodes[node], True))
    blocked = [
        f"  {migration.app_label}.{migration.name}: {operation.describe()}"
        for migration, _backwards in steps
        for operation in migration.operations
        if not operation.reversible
    ]
    if blocked:
        fakes = []
        for label, first in _earliest_per_app(steps).items():
            parents = sorted(p[1] for p in graph.node_map[(label, first)].parents if p[0] == label)
            fakes.append(
                f"  python manage.py migrate {label} {parents[0] if parents else 'zero'} --fake"
            )
        raise AppliedMigrationsError(
            "Cannot roll back the applied migrations before renaming them: these operations "
            "are irreversible:\n" + "\n".join(blocked) + "\nNothing was changed. Undo what they "
            "did by hand (or restore the database), then record them as unapplied:\n"
            + "\n".join(fakes)
            + "\nand run update_migration again."
        )
    return steps


def _earliest_per_app(steps: list[Step]) -> dict[str, str]:
    """Per app, the last migration of the backwards plan (the earliest one unapplied)."""
    found: dict[str, str] = {}
    for migration, _backwards in steps:
        found[migration.app_label] = migration.name
    return dict(sorted(found.items()))


def roll_back(steps: list[Step], connection: BaseDatabaseWrapper) -> None:
    from django.db.migrations.executor import MigrationExecutor

    if steps:
        MigrationExecutor(connection).migrate([], plan=steps)


def still_applied(keys: Iterable[Key], connection: BaseDatabaseWrapper) -> list[Key] | None:
    """Of ``keys``, those recorded as applied now (None: the database cannot say)."""
    from django.db.migrations.recorder import MigrationRecorder

    try:
        recorded = set(MigrationRecorder(connection).applied_migrations())
    except Exception:
        return None
    return [key for key in keys if key in recorded]


def refuse(applied: list[Key], alias: str | None = None) -> AppliedMigrationsError:
    """Applied migrations cannot be renamed without --update-applied; ``alias`` names the
    database when it is not the one --update-applied rolls back by default."""
    names = "\n".join(f"  {fmt(k)}" for k in applied)
    where = "the database" if alias is None else f"database '{alias}'"
    flags = "--update-applied" if alias is None else f"--update-applied --database {alias}"
    return AppliedMigrationsError(
        f"These migrations are recorded as applied in {where}:\n"
        f"{names}\n"
        "Renaming them would leave the migration history inconsistent (they would depend on "
        "main's migrations, which are not applied) and 'migrate' would refuse to run. Nothing "
        f"was changed.\nRun again with {flags} to roll them back first (their reverse "
        "operations), then rename them; 'python manage.py migrate' then applies them in the new "
        "order."
    )


def aliases() -> list[str]:
    """Every database alias of the project (DATABASES' order)."""
    from django.db import connections

    return list(connections.settings)


def names(steps: list[Step]) -> list[str]:
    return [f"{m.app_label}.{m.name}" for m, _backwards in steps]
