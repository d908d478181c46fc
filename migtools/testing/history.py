"""The migration history the migration tests work on: the graph, loaded once per process and
migration set, the project state of a set of recorded migrations, name resolution with
hints, and the ``django_migrations`` rows of a database."""

from __future__ import annotations

import difflib
from collections.abc import Collection
from dataclasses import dataclass, field

from django.apps import apps as global_apps
from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState

from migtools.errors import MigrationTestError
from migtools.testing import snapshot

Node = tuple[str, str]


@dataclass
class Graph:
    loader: MigrationLoader
    fingerprint: str
    full_plan: list[Migration]
    states: dict[frozenset[Node], ProjectState] = field(default_factory=dict)

    def state_for(self, applied: frozenset[Node]) -> ProjectState:
        """The project state of a database with exactly ``applied`` migrations (as recorded
        in ``django_migrations``), apps rendered (cached: tests of one target share it;
        callers clone before mutating). Nothing is rendered before the end."""
        state = self.states.get(applied)
        if state is None:
            state = ProjectState(real_apps=self.loader.unmigrated_apps)
            for migration in self.full_plan:
                if is_applied(self.loader, (migration.app_label, migration.name), applied):
                    state = migration.mutate_state(state, preserve=False)
            state.apps  # noqa: B018 - render once, here
            self.states[applied] = state
        return state


def is_applied(loader: MigrationLoader, key: Node, recorded: Collection[Node]) -> bool:
    """Recorded, or a squashed migration whose replaced migrations are all recorded.

    Django 6.0+ answers this itself (``MigrationLoader.all_replaced_applied``, recursive: a
    squash of a squash loads there); Django 5.2 has no such method (nor loads a squash of a
    squash), so one level is checked here."""
    if key in recorded:
        return True
    all_replaced_applied = getattr(loader, "all_replaced_applied", None)
    if all_replaced_applied is not None:
        return bool(all_replaced_applied(key, recorded))
    migration: Migration = loader.graph.nodes[key]
    return bool(migration.replaces) and all(tuple(r) in recorded for r in migration.replaces)


_graphs: dict[tuple[str, ...], Graph] = {}


def load(*, replaced: bool = False) -> Graph:
    """The graph of the installed apps' migrations (cached per MIGRATION_MODULES and app set).

    ``replaced``: the graph a database that applied the replaced migrations one by one walks,
    each squash left out while the migrations it replaces are on disk (Django's own graph for
    a database where a squash is partly applied). Migration tests naming a replaced migration
    run on it, so a squash breaks no test until its replaced migrations are pruned."""
    key = (
        repr(sorted(getattr(settings, "MIGRATION_MODULES", {}).items())),
        *(config.name for config in global_apps.get_app_configs()),
        "replaced" if replaced else "squashed",
    )
    graph = _graphs.get(key)
    if graph is None:
        if replaced:
            loader = MigrationLoader(None, ignore_no_migrations=True, replace_migrations=False)
            for squash, migration in loader.replacements.items():
                if all(tuple(r) in loader.disk_migrations for r in migration.replaces):
                    loader.graph.remove_replacement_node(squash, migration.replaces)
                else:
                    loader.graph.remove_replaced_nodes(squash, migration.replaces)
            loader.graph.validate_consistency()
        else:
            loader = MigrationLoader(None, ignore_no_migrations=True)
        full_plan: list[Migration] = []
        seen: set[Node] = set()
        for leaf in sorted(loader.graph.leaf_nodes()):
            for node in loader.graph.forwards_plan(leaf):
                if node not in seen:
                    seen.add(node)
                    full_plan.append(loader.graph.nodes[node])
        # The same fingerprint: a snapshot at a migration both graphs hold is the same
        # database whichever graph walked back to it.
        graph = _graphs[key] = Graph(loader, snapshot.graph_fingerprint(loader), full_plan)
    return graph


def load_for(app: str | None, names: Collection[str | None]) -> Graph:
    """The graph a test naming ``names`` of ``app`` runs on: the usual one, or the replaced
    one when a name is a migration that a squash replaces (see :func:`load`)."""
    graph = load()
    if not app or all(not n or (app, n) in graph.loader.graph.nodes for n in names):
        return graph
    if not graph.loader.replacements:
        return graph
    replaced = load(replaced=True)
    if all(not n or (app, n) in replaced.loader.graph.nodes for n in names):
        return replaced
    return graph


def resolve(graph: Graph, app: str | None, name: str | None, role: str, owner: str) -> Node:
    if not app:
        raise MigrationTestError(
            f"{owner}: set `app` (the label of the app whose migration is tested) or the "
            "MIGTOOLS_DEFAULT_APP setting."
        )
    try:
        global_apps.get_app_config(app)
    except LookupError:
        labels = ", ".join(sorted(c.label for c in global_apps.get_app_configs()))
        raise MigrationTestError(
            f"{owner}: app = {app!r} is not an installed app label (installed: {labels})."
        ) from None
    names = sorted(n for a, n in graph.loader.graph.nodes if a == app)
    if not names:
        raise MigrationTestError(f"{owner}: app {app!r} has no migrations.")
    if not name:
        raise MigrationTestError(
            f"{owner}: set `{role}` to a migration name of app {app!r} "
            f"(its latest is {names[-1]!r})."
        )
    if (app, name) not in graph.loader.graph.nodes:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        prefixed = [n for n in names if n.startswith(name)]
        hints = prefixed or close
        hint = f" Did you mean {', '.join(map(repr, hints))}?" if hints else ""
        raise MigrationTestError(
            f"{owner}: {role} = {name!r} is not a migration of app {app!r}.{hint}"
        )
    return (app, name)


def recorded(wrapper: BaseDatabaseWrapper) -> set[Node]:
    """The ``django_migrations`` rows as keys (``MigrationRecorder.applied_migrations()``
    without building a model instance per row: a thousand rows cost milliseconds)."""
    recorder = MigrationRecorder(wrapper)
    if not recorder.has_table():
        return set()
    table = wrapper.ops.quote_name(recorder.Migration._meta.db_table)
    with wrapper.cursor() as cursor:
        cursor.execute(f"SELECT app, name FROM {table}")
        return {(str(app), str(name)) for app, name in cursor.fetchall()}
