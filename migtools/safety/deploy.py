"""The pre-deploy plan: every migration that is not post-deployment and does not depend on
one, forwards only; what it defers, and why."""

from __future__ import annotations

from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration

from migtools.errors import UsageError


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
