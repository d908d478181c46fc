"""The pre-deploy plan: every migration that is not post-deployment and does not depend on
one, forwards only; what it defers, and why. And the deploy ``migrate`` is applying: the tables
its plan creates, handed to the schema editors of that connection."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration

from migtools.errors import UsageError

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

_NEW_TABLES = "migtools_deploy_new_tables"


@contextmanager
def applying(connection: BaseDatabaseWrapper, new_tables: Iterable[str]) -> Iterator[None]:
    """While ``migrate`` applies a plan its preflight passed, on ``connection``: the plan's
    new tables (the preflight judged the plan as one deploy, so a table created anywhere in it
    is new; the editor's apply-time backstop judges each migration of it the same way)."""
    before = getattr(connection, _NEW_TABLES, None)
    setattr(connection, _NEW_TABLES, frozenset(new_tables))
    try:
        yield
    finally:
        setattr(connection, _NEW_TABLES, before)


def new_tables(connection: BaseDatabaseWrapper) -> frozenset[str]:
    """The tables the deploy applied on ``connection`` creates (empty outside ``migrate``)."""
    return getattr(connection, _NEW_TABLES, None) or frozenset()


def is_applying(connection: BaseDatabaseWrapper) -> bool:
    """``migrate`` is applying a plan on ``connection`` (its editors run migrations)."""
    return getattr(connection, _NEW_TABLES, None) is not None


def is_post_deployment(migration: Migration) -> bool:
    return getattr(migration, "is_post_deployment", False) is True


def pre_deploy_plan(
    executor: MigrationExecutor, targets: list[tuple[str, str | None]]
) -> tuple[list[tuple[Migration, bool]], list[tuple[Migration, str]]]:
    """(plan to apply now, [(deferred migration, reason)]): forwards only."""
    plan = executor.migration_plan(targets)
    if any(backwards for _migration, backwards in plan):
        raise UsageError(
            "--pre-deploy only applies migrations forwards; this target would unapply some. "
            "Run plain `migrate APP NAME` to unapply."
        )
    graph = executor.loader.graph
    deferred: dict[tuple[str, str], str] = {}
    apply: list[tuple[Migration, bool]] = []
    for migration, backwards in plan:
        key = (migration.app_label, migration.name)
        if is_post_deployment(migration):
            deferred[key] = "post-deployment"
            continue
        blocked = [p for p in graph.node_map[key].parents if p.key in deferred]
        if blocked:
            parent = blocked[0].key
            deferred[key] = f"depends on deferred {parent[0]}.{parent[1]}"
            continue
        apply.append((migration, backwards))
    by_key = {(m.app_label, m.name): m for m, _b in plan}
    return apply, [(by_key[k], reason) for k, reason in deferred.items()]
