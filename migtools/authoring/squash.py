"""What ``squashmigrations`` decides before Django writes the squash: which migrations it
replaces (Django's own selection), whether this Django can load the result, and the migtools
attributes the squash carries from the migrations it replaces."""

from __future__ import annotations

from typing import Any

import django
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration

from migtools.errors import SquashError


def selection(app_label: str, start: str | None, end: str) -> list[Migration] | None:
    """The migrations Django's squashmigrations would squash (None: let Django report the
    bad name or ambiguity itself)."""
    try:
        loader = MigrationLoader(None, ignore_no_migrations=True)
        last = loader.get_migration_by_prefix(app_label, end)
        chosen: list[Migration] = [
            loader.get_migration(a, n)
            for a, n in loader.graph.forwards_plan((last.app_label, last.name))
            if a == app_label
        ]
        if start:
            first = loader.get_migration_by_prefix(app_label, start)
            chosen = chosen[chosen.index(first) :]
    except Exception:
        return None
    return chosen


def refuse_resquash(chosen: list[Migration], app_label: str) -> None:
    """Django 5.2's loader cannot load a squash of a squash (it fails depending on the hash
    seed): refuse with the way out. Django 6.0+ loads it."""
    if django.VERSION >= (6, 0):
        return
    squashes = [m.name for m in chosen if m.replaces]
    if not squashes:
        return
    names = ", ".join(squashes)
    later = [m.name for m in chosen[chosen.index(next(m for m in chosen if m.replaces)) + 1 :]]
    after = (
        f", or squash only what comes after it: python manage.py squashmigrations {app_label} "
        f"{later[0]} {later[-1]}"
        if len(later) > 1
        else ""
    )
    raise SquashError(
        f"{app_label}.{names} is itself a squash, and Django {django.get_version()} cannot load "
        "a squash of a squash. Once it is deployed everywhere, make it a normal migration with "
        f"python manage.py prune_squashed {app_label}, then squash again{after}. Nothing was "
        "written."
    )


def attributes(chosen: list[Migration]) -> dict[str, Any]:
    """The migtools attributes of the squash: post-deployment when any replaced migration is
    (its slow work would otherwise run before the deploy), non-atomic when any replaced
    migration is (it holds work that cannot run in a transaction), and every rule a replaced
    migration ignored, with its reason (the squash holds those operations)."""
    result: dict[str, Any] = {
        "is_post_deployment": any(getattr(m, "is_post_deployment", False) for m in chosen)
    }
    if any(not m.atomic for m in chosen):
        result["atomic"] = False
    ignored: dict[str, str] = {}
    for migration in chosen:
        for rule, reason in (getattr(migration, "ignore_rules", None) or {}).items():
            ignored.setdefault(rule, f"{reason} ({migration.name})")
    if ignored:
        result["ignore_rules"] = ignored
    return result
