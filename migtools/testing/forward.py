"""A snapshot built forwards: when the walk back from head to ``migrate_from`` would meet a
migration that cannot run backwards (a RunPython without reverse_code, a RunSQL without
reverse_sql, a custom operation whose ``database_backwards`` refuses), the database at
``migrate_from`` is made by applying the migrations up to it to an empty database instead,
once; it becomes the snapshot, and the following tests copy it as they copy a walked-back one.

The database holds what the walk back would have left: the same ``django_migrations`` rows,
the rows the applied data migrations seed, and what ``post_migrate`` creates (content types,
permissions) for the models at that point.
"""

from __future__ import annotations

from collections.abc import Collection

from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.state import ProjectState

from migtools.backfill.runners import inline_only
from migtools.testing import walk
from migtools.testing.history import Graph, Node


def build(wrapper: BaseDatabaseWrapper, graph: Graph, remaining: Collection[Node]) -> None:
    """Apply to ``wrapper``'s (empty) database the migrations that leave exactly
    ``remaining`` recorded, in the order Django's ``migrate`` applies them."""
    with wrapper.cursor() as cursor:
        # A copy being built: a crash loses nothing worth an fsync per migration.
        cursor.execute("SET synchronous_commit TO off")
    plan = [(migration, False) for migration in walk.forward_plan(graph, remaining)]
    executor = walk.executor(wrapper, graph.loader)
    state = ProjectState(real_apps=graph.loader.unmigrated_apps)
    emit_pre_migrate_signal(0, False, wrapper.alias, apps=state.apps, plan=plan)
    with inline_only():  # a RunBackfill runs here and now, as `migrate` of the test db ran it
        state = executor.migrate([], plan=plan, state=state)
    state.clear_delayed_apps_cache()
    emit_post_migrate_signal(0, False, wrapper.alias, apps=state.apps, plan=plan)
