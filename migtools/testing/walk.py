"""The migration tests' fast paths (private Django API, fenced here; off with
``MIGTOOLS_FAST_PATHS = False``, then Django's own executor does the same work).

- ``executor()``: Django's ``MigrationExecutor`` over the graph the tests already loaded
  (building one loads every migration of the project again: for 1,000 migrations that would
  dominate a test's cost). It sets the executor's attributes without its ``__init__``.
- ``prepare()`` / ``walk_back()``: the snapshot's walk back to ``migrate_from``. Django's
  executor renders the state before every migration it unapplies by replaying the whole plan
  from zero; here the states are computed once, forwards from the target, while the server
  copies the database (``WalkBack``), with ``Migration.unapply``'s second phase run on them
  and field clones served from one ``deconstruct()`` (``FieldClones``, which sets an
  attribute on Django's field objects for the duration).

Everything else in ``migtools.testing`` uses Django's documented or long-stable interface.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, cast

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import operations
from django.db.migrations.exceptions import IrreversibleError
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.operations.base import Operation
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState
from django.db.models import Field

from migtools import conf
from migtools.testing import history
from migtools.testing.history import Graph, Node, is_applied


def executor(
    connection: BaseDatabaseWrapper,
    loader: MigrationLoader,
    progress_callback: Callable[..., None] | None = None,
) -> MigrationExecutor:
    """An executor for ``connection`` over ``loader``'s graph; with fast paths off, Django's
    own (which loads the graph again, from the files and the database)."""
    if not conf.fast_paths():
        return MigrationExecutor(connection, progress_callback)
    return _Executor(connection, loader, progress_callback)


def prepare(graph: Graph, recorded_nodes: Collection[Node], node: Node) -> WalkBack | None:
    """The walk back to ``node`` from a database holding ``recorded_nodes``, planned without
    touching it (safe to run in a thread while the server copies the database); None when
    Django's executor does the walk (fast paths off, or a case left to it)."""
    if not conf.fast_paths():
        return None
    return WalkBack.plan(graph, recorded_nodes, node)


def walk_back(wrapper: BaseDatabaseWrapper, walk: WalkBack | None, node: Node) -> None:
    """Unapply what comes after ``node`` on ``wrapper``'s database: the prepared walk, or
    Django's executor (``manage.py migrate APP NODE``) when there is none."""
    if walk is None:
        MigrationExecutor(wrapper).migrate([node])
    else:
        walk.run(wrapper)


class _Executor(MigrationExecutor):
    """Django's executor over an already loaded graph (loading 1,000 migrations per test
    would dominate the test's cost)."""

    def __init__(
        self,
        connection: BaseDatabaseWrapper,
        loader: MigrationLoader,
        progress_callback: Callable[..., None] | None,
    ) -> None:
        self.connection = connection
        self.loader = loader
        self.recorder = MigrationRecorder(connection)
        self.progress_callback = progress_callback


_OpStates = list[tuple[Operation, ProjectState, ProjectState]]  # operation, before, after


def _stock_unapply(migration: Migration) -> bool:
    """``unapply`` is Django's own (or ``CheckedMigration``'s wrapper of it): the walk back may
    run its second phase with states computed once. Any other override runs as written."""
    from migtools.migration import CheckedMigration

    return type(migration).unapply in (Migration.unapply, CheckedMigration.unapply)


def _run_backwards(migration: Migration, steps: _OpStates, editor: Any) -> None:
    """Phase 2 of Django's ``Migration.unapply``: each operation backwards, last first."""
    for operation, to_state, from_state in reversed(steps):
        atomic_operation = operation.atomic or (migration.atomic and operation.atomic is not False)
        if not editor.atomic_migration and atomic_operation:
            with transaction.atomic(editor.connection.alias):
                operation.database_backwards(migration.app_label, editor, from_state, to_state)
        else:
            operation.database_backwards(migration.app_label, editor, from_state, to_state)


# Operations whose state_forwards never changes a field object in place (RenameField does:
# from_fields, to_fields, remote_field.field_name), so a field's deconstruct() stays true.
_FIELD_SAFE_OPERATIONS: tuple[type[Operation], ...] = (
    operations.AddField,
    operations.RemoveField,
    operations.AlterField,
    operations.CreateModel,
    operations.DeleteModel,
    operations.RunPython,
    operations.RunSQL,
    operations.AddIndex,
    operations.RemoveIndex,
    operations.AddConstraint,
    operations.RemoveConstraint,
    operations.AlterModelOptions,
    operations.AlterModelTable,
    operations.AlterModelTableComment,
    operations.AlterUniqueTogether,
    operations.AlterModelManagers,
    operations.AlterOrderWithRespectTo,
)


class FieldClones:
    """While the walk's states are computed, each field of the model states clones itself
    from one ``deconstruct()`` instead of one per render.

    Rendering a model clones every field (``deconstruct()`` then ``__init__``); carrying a
    200-field model through 100 migrations deconstructs the same 200 field objects 100 times,
    about a third of the walk's cost. The fields of model states are templates never bound to
    a model, shared by the states, and only ``RenameField`` (among Django's operations)
    changes one in place: so a field's ``clone`` is served from its first deconstruction, as
    an attribute of that object only, removed on exit. Used only when every operation of the
    walk keeps its fields as they are (its ``state_forwards`` is one of
    ``_FIELD_SAFE_OPERATIONS``'), and only for fields using ``Field.clone`` itself.
    """

    def __init__(self, state: ProjectState, plan: list[Migration]) -> None:
        self.enabled = all(
            any(type(op).state_forwards is safe.state_forwards for safe in _FIELD_SAFE_OPERATIONS)
            for migration in plan
            for op in migration.operations
        )
        self.state = state
        self.patched: list[Field[Any, Any]] = []

    def __enter__(self) -> FieldClones:
        if self.enabled:
            for model_state in self.state.models.values():
                self._fields(model_state.fields.values())
        return self

    def __exit__(self, *exc_info: object) -> None:
        for template in self.patched:
            template.__dict__.pop("clone", None)
        self.patched.clear()

    def add(self, operation: Operation) -> None:
        """The field objects ``operation`` brings into the state."""
        if not self.enabled:
            return
        added = getattr(operation, "field", None)
        if isinstance(added, Field):
            self._fields([added])
        if isinstance(operation, operations.CreateModel):
            self._fields(template for _, template in operation.fields)

    def _fields(self, fields: Iterable[Any]) -> None:
        for template in fields:
            kind: type[Any] = type(template)
            if "clone" in template.__dict__ or kind.clone is not Field.clone:
                continue
            _, _, args, kwargs = template.deconstruct()
            template.__dict__["clone"] = functools.partial(cast(Any, kind), *args, **kwargs)
            self.patched.append(template)


def unapply_plan(
    graph: Graph, recorded: Collection[Node], node: Node
) -> tuple[list[Migration], frozenset[Node]] | None:
    """What ``manage.py migrate <app> <node>`` unapplies from a database holding ``recorded``,
    in its order, and the ``django_migrations`` rows left at the end; None when the target is
    not applied or a squashed migration is only partly applied (left to Django's executor)."""
    nodes = graph.loader.graph
    applied: dict[Node, Migration] = {}
    for key, migration in nodes.nodes.items():
        replaced = [tuple(r) in recorded for r in migration.replaces or ()]
        if any(replaced) and not all(replaced):
            return None
        if is_applied(graph.loader, key, recorded):
            applied[key] = migration
    if node not in applied:
        return None
    # Django's migration_plan() for an applied target: back through node's children in its
    # own app, and what depends on them, no further.
    plan: list[Migration] = []
    for child in sorted(n for n in nodes.node_map[node].children if n[0] == node[0]):
        for key in nodes.backwards_plan(child):
            if key in applied:
                plan.append(applied.pop(key))
    unapplied: set[Node] = set()
    for migration in plan:
        unapplied.add((migration.app_label, migration.name))
        unapplied.update((str(app), str(name)) for app, name in migration.replaces or ())
    return plan, frozenset(set(recorded) - unapplied)


def _irreversible_operation(operation: Operation) -> Operation | None:
    """``operation`` itself, or the database operation inside a ``SeparateDatabaseAndState``,
    that declares it cannot run backwards (``Operation.reversible``: a RunPython without
    reverse_code, a RunSQL without reverse_sql)."""
    if not operation.reversible:
        return operation
    if isinstance(operation, operations.SeparateDatabaseAndState):
        for inner in operation.database_operations:
            found = _irreversible_operation(inner)
            if found is not None:
                return found
    return None


def irreversible(graph: Graph, recorded: Collection[Node], node: Node) -> str | None:
    """The first operation the walk back from ``recorded`` to ``node`` could not unapply, read
    from the operations alone before touching a database ("app.name: Operation"); None when
    every operation on the way declares itself reversible (or the walk is left to Django)."""
    unapply = unapply_plan(graph, recorded, node)
    if unapply is None:
        return None
    for migration in unapply[0]:
        for operation in migration.operations:
            found = _irreversible_operation(operation)
            if found is not None:
                label = found.describe() if hasattr(found, "describe") else type(found).__name__
                return f"{migration.app_label}.{migration.name}: {label}"
    return None


def forward_plan(graph: Graph, remaining: Collection[Node]) -> list[Migration]:
    """The migrations to apply, in order, to an empty database so that it holds exactly what
    the walk back would leave (``remaining``): the forward build of a snapshot."""
    return [
        migration
        for migration in graph.full_plan
        if is_applied(graph.loader, (migration.app_label, migration.name), remaining)
    ]


@dataclass
class WalkBack:
    """What ``manage.py migrate <app> <node>`` unapplies, in its order, with the project states
    each operation goes from and to, computed before touching the database.

    Django's executor renders the state before every migration it unapplies by replaying the
    whole plan from zero, and ``Migration.unapply`` renders each operation's states again.
    Here the state at ``node`` (where the walk ends) is computed without rendering and rendered
    once, then carried forward through the migrations to unapply with one model reload per
    operation, keeping each intermediate state. The cost grows with the migrations unapplied
    (one model render and one statement each), not with the length of the project's history.
    """

    node: Node
    remaining: frozenset[Node]  # django_migrations rows left at the end
    steps: list[tuple[Migration, ProjectState, _OpStates]]  # in unapply order

    @classmethod
    def plan(cls, graph: Graph, recorded: Collection[Node], node: Node) -> WalkBack | None:
        """None for what is left to Django's executor: the target not applied, or a squashed
        migration only partly applied (Django then rebuilds its graph without the squash)."""
        unapply = unapply_plan(graph, recorded, node)
        if unapply is None:
            return None
        plan, remaining = unapply
        if not plan:
            return cls(node, remaining, [])
        # Forwards from node (reversed, the backwards plan is a valid order to apply in),
        # keeping the states each operation goes from and to.
        state = graph.state_for(remaining).clone()
        forwards: list[tuple[Migration, ProjectState, _OpStates]] = []
        with FieldClones(state, plan) as clones:
            for migration in reversed(plan):
                before, steps = state, []
                for operation in migration.operations:
                    if not operation.reversible:
                        raise IrreversibleError(
                            f"Operation {operation} in {migration} is not reversible"
                        )
                    clones.add(operation)
                    after = state.clone()
                    operation.state_forwards(migration.app_label, after)
                    steps.append((operation, state, after))
                    state = after
                forwards.append((migration, before, steps))
        forwards.reverse()
        return cls(node, remaining, forwards)

    def run(self, wrapper: BaseDatabaseWrapper) -> None:
        """Unapply on ``wrapper``'s database (which must hold what ``plan`` was given)."""
        if not self.steps:
            return
        with wrapper.cursor() as cursor:
            # A copy being built: a crash loses nothing worth an fsync per migration.
            cursor.execute("SET synchronous_commit TO off")
        for migration, before, steps in self.steps:
            with wrapper.schema_editor(atomic=migration.atomic) as editor:
                if not _stock_unapply(migration):
                    migration.unapply(before, editor)
                    continue

                def inner(
                    state: ProjectState,
                    editor: Any,
                    collect_sql: bool,
                    migration: Migration = migration,
                    steps: _OpStates = steps,
                ) -> ProjectState:
                    _run_backwards(migration, steps, editor)
                    return state

                run = getattr(editor, "migtools_run", None)
                if run is not None and type(migration).unapply is not Migration.unapply:
                    run(migration, inner, before, False, True)  # CheckedMigration.unapply
                else:
                    inner(before, editor, False)
        # The rows of every unapplied migration (and of what a squash replaces), at once.
        recorder = MigrationRecorder(wrapper)
        table = wrapper.ops.quote_name(recorder.Migration._meta.db_table)
        gone = sorted(history.recorded(wrapper) - self.remaining)
        with wrapper.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE (app, name) IN "
                "(SELECT * FROM unnest(%s::text[], %s::text[]))",
                [[app for app, _ in gone], [name for _, name in gone]],
            )


# Set by the pytest plugin: creates an alias's test database when no collected test asked
