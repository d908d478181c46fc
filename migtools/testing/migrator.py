"""Tests for data migrations: ``TestMigrations`` (unittest style) and ``Migrator`` (functions).

Every test runs on a throwaway copy of the test database, never on the test database itself:

1. the copy comes from a snapshot of the database at ``migrate_from`` (a PostgreSQL template
   database made once per migration graph and target, by walking a copy of head back once);
2. ``setup_before_migration(apps)`` seeds rows through the historical models at ``migrate_from``;
3. the migrations up to ``migrate_to`` run (Django's executor, with the pre/post_migrate signals
   ``manage.py migrate`` sends: content types and permissions behave as after a real migrate);
4. the test body asserts; the copy is dropped and the alias points at the test database again,
   which stayed at head with every row that data migrations seeded.

So the cost of a test does not depend on how many migrations come after the one under test,
and several ``test_*`` methods per class each start from the same state. A test that overrides
``setup_initial_state()`` (rows created at head, e.g. with factories) walks its copy back to
``migrate_from`` itself, carrying those rows through the later migrations' reverse operations.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

from django.apps import apps as global_apps
from django.conf import settings
from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.creation import TEST_DATABASE_PREFIX
from django.db.migrations import operations
from django.db.migrations.exceptions import IrreversibleError
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.operations.base import Operation
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState, StateApps
from django.db.models import Field
from django.test import TransactionTestCase

from migtools.backfill.runners import inline_only
from migtools.conf import default_app
from migtools.errors import MigrationTestError
from migtools.testing import snapshot

__all__ = ["MigrationTestError", "Migrator", "TestMigrations"]

Node = tuple[str, str]


# -- the migration graph, loaded once per process ---------------------------------------------


@dataclass
class _Graph:
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
                if _is_applied(migration, applied):
                    state = migration.mutate_state(state, preserve=False)
            state.apps  # noqa: B018 - render once, here
            self.states[applied] = state
        return state


def _is_applied(migration: Migration, recorded: Collection[Node]) -> bool:
    """Recorded, or a squashed migration whose replaced migrations are all recorded."""
    if (migration.app_label, migration.name) in recorded:
        return True
    return bool(migration.replaces) and all(tuple(r) in recorded for r in migration.replaces)


_graphs: dict[tuple[str, ...], _Graph] = {}


def _graph() -> _Graph:
    key = (
        repr(sorted(getattr(settings, "MIGRATION_MODULES", {}).items())),
        *(config.name for config in global_apps.get_app_configs()),
    )
    graph = _graphs.get(key)
    if graph is None:
        loader = MigrationLoader(None, ignore_no_migrations=True)
        full_plan: list[Migration] = []
        seen: set[Node] = set()
        for leaf in sorted(loader.graph.leaf_nodes()):
            for node in loader.graph.forwards_plan(leaf):
                if node not in seen:
                    seen.add(node)
                    full_plan.append(loader.graph.nodes[node])
        graph = _graphs[key] = _Graph(loader, snapshot.graph_fingerprint(loader), full_plan)
    return graph


def _resolve(graph: _Graph, app: str | None, name: str | None, role: str, owner: str) -> Node:
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


class _RolledBack:
    """A transaction around everything a test does on a warm copy, rolled back at the end,
    sequences included (``nextval`` is not transactional): the next test sees the same ids.

    If the transaction did not survive (the test closed the connection, committed through
    another path, …) the copy's state is in doubt and ``on_doubt`` discards it.
    """

    def __init__(self, wrapper: BaseDatabaseWrapper, on_doubt: Callable[[], None]) -> None:
        self.wrapper = wrapper
        self.on_doubt = on_doubt
        self.sequences: dict[str, tuple[int | None, int]] = {}
        self.atomic: transaction.Atomic | None = None
        self.raw: Any = None

    def __enter__(self) -> _RolledBack:
        self.sequences = self._read_sequences()
        self.atomic = transaction.atomic(using=self.wrapper.alias)
        self.atomic.__enter__()
        self.raw = self.wrapper.connection
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self.atomic is not None
        intact = (
            self.wrapper.connection is not None
            and self.wrapper.connection is self.raw
            and self.wrapper.in_atomic_block
            and len(self.wrapper.atomic_blocks) == 1
        )
        try:
            if intact:
                transaction.set_rollback(True, using=self.wrapper.alias)
                self.atomic.__exit__(None, None, None)
                self._restore_sequences()
        except Exception:
            intact = False
        if not intact:
            self.wrapper.close()
            self.wrapper.in_atomic_block = False
            self.wrapper.atomic_blocks = []
            self.wrapper.needs_rollback = False
            self.on_doubt()

    def _read_sequences(self) -> dict[str, tuple[int | None, int]]:
        with self.wrapper.cursor() as cursor:
            cursor.execute(
                "SELECT format('%I.%I', schemaname, sequencename), last_value, start_value "
                "FROM pg_sequences"
            )
            return {name: (last, start) for name, last, start in cursor.fetchall()}

    def _restore_sequences(self) -> None:
        now = self._read_sequences()
        changed = [
            (name, value) for name, value in self.sequences.items() if now.get(name) != value
        ]
        if changed:
            with self.wrapper.cursor() as cursor:
                for name, (last, start) in changed:
                    cursor.execute(
                        "SELECT setval(%s::regclass, %s, %s)",
                        (name, start if last is None else last, last is not None),
                    )


def _check_alias(alias: str, owner: str) -> BaseDatabaseWrapper:
    if alias not in connections.settings:
        known = ", ".join(sorted(connections.settings))
        raise MigrationTestError(
            f"{owner}: connection = {alias!r} is not a database alias (DATABASES has: {known})."
        )
    return connections[alias]


def _is_test_database(wrapper: BaseDatabaseWrapper) -> bool:
    """Django's test runner (and pytest-django) renamed the alias' database already."""
    name = wrapper.settings_dict["NAME"]
    test_name = (wrapper.settings_dict.get("TEST") or {}).get("NAME")
    return bool(name) and (name == test_name or str(name).startswith(TEST_DATABASE_PREFIX))


class _Executor(MigrationExecutor):
    """Django's executor over an already loaded graph (loading 1,000 migrations per test
    would dominate the test's cost)."""

    def __init__(self, connection: BaseDatabaseWrapper, loader: MigrationLoader) -> None:
        self.connection = connection
        self.loader = loader
        self.recorder = MigrationRecorder(connection)
        self.progress_callback = None


def _recorded(wrapper: BaseDatabaseWrapper) -> set[Node]:
    """The ``django_migrations`` rows as keys (``MigrationRecorder.applied_migrations()``
    without building a model instance per row: a thousand rows cost milliseconds)."""
    recorder = MigrationRecorder(wrapper)
    if not recorder.has_table():
        return set()
    table = wrapper.ops.quote_name(recorder.Migration._meta.db_table)
    with wrapper.cursor() as cursor:
        cursor.execute(f"SELECT app, name FROM {table}")
        return {(str(app), str(name)) for app, name in cursor.fetchall()}


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


class _FieldClones:
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

    def __enter__(self) -> _FieldClones:
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


@dataclass
class _WalkBack:
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
    def plan(cls, graph: _Graph, recorded: Collection[Node], node: Node) -> _WalkBack | None:
        """None for what is left to Django's executor: the target not applied, or a squashed
        migration only partly applied (Django then rebuilds its graph without the squash)."""
        nodes = graph.loader.graph
        applied: dict[Node, Migration] = {}
        for key, migration in nodes.nodes.items():
            replaced = [tuple(r) in recorded for r in migration.replaces or ()]
            if any(replaced) and not all(replaced):
                return None
            if _is_applied(migration, recorded):
                applied[key] = migration
        if node not in applied:
            return None
        # Django's migration_plan() for an applied target: back through node's children in
        # its own app, and what depends on them, no further.
        plan: list[Migration] = []
        for child in sorted(n for n in nodes.node_map[node].children if n[0] == node[0]):
            for key in nodes.backwards_plan(child):
                if key in applied:
                    plan.append(applied.pop(key))
        unapplied: set[Node] = set()
        for migration in plan:
            unapplied.add((migration.app_label, migration.name))
            unapplied.update((str(app), str(name)) for app, name in migration.replaces or ())
        remaining = frozenset(set(recorded) - unapplied)
        if not plan:
            return cls(node, remaining, [])
        # Forwards from node (reversed, the backwards plan is a valid order to apply in),
        # keeping the states each operation goes from and to.
        state = graph.state_for(remaining).clone()
        forwards: list[tuple[Migration, ProjectState, _OpStates]] = []
        with _FieldClones(state, plan) as clones:
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
        gone = sorted(_recorded(wrapper) - self.remaining)
        with wrapper.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE (app, name) IN "
                "(SELECT * FROM unnest(%s::text[], %s::text[]))",
                [[app for app, _ in gone], [name for _, name in gone]],
            )


# Set by the pytest plugin: creates an alias's test database when no collected test asked
# pytest-django for it (a function test using only the ``migtools_migrator`` fixture).
ensure_test_database: Callable[[str], None] | None = None


class Migrator:
    """One migration round trip on one database alias.

    ``before(migrate_from)`` → historical apps at ``migrate_from`` (seed rows with them);
    ``after(migrate_to)`` → apps at ``migrate_to`` once the migrations ran; ``reset()`` points
    the alias back at the untouched test database (at head) and drops the copy.
    """

    def __init__(self, owner: str = "Migrator") -> None:
        self.owner = owner
        self.alias = DEFAULT_DB_ALIAS
        self.app: str | None = None
        self._stack: ExitStack | None = None
        self._graph: _Graph | None = None
        self._applied: frozenset[Node] = frozenset()
        self._state: ProjectState | None = None
        self._migrated = False
        self._transactional = True

    # -- public API -----------------------------------------------------------------------

    def before(
        self,
        migrate_from: str | None,
        *,
        app: str | None = None,
        connection: str = DEFAULT_DB_ALIAS,
        initial_state: Callable[[], None] | None = None,
        migrate_to: str | None = None,
    ) -> StateApps:
        """Put ``connection`` at ``migrate_from`` (a clean copy) and return its apps.

        ``initial_state`` runs first, at head (rows it creates are carried back through the
        later migrations' reverse operations: slower, the copy cannot come from a snapshot).
        ``migrate_to``, when known, lets a non-atomic migration get a copy it may commit to.
        """
        self.reset()
        original = _check_alias(connection, self.owner)
        self.alias = connection
        self.app = app or default_app()
        graph = self._graph = _graph()
        node = _resolve(graph, self.app, migrate_from, "migrate_from", self.owner)
        original = self._test_database(original)
        if original.in_atomic_block:
            raise MigrationTestError(
                f"{self.owner}: alias {connection!r} is inside a transaction (pytest-django's "
                "`db` fixture or a django_db mark without transaction=True?). Migration tests "
                "manage the database themselves: drop that fixture/mark."
            )
        store = snapshot.store_for(original)
        stack = self._stack = ExitStack()
        if initial_state is None and not self._needs_fresh_copy(graph, node, migrate_to):
            # The common case: a warm copy of the snapshot at migrate_from, with everything the
            # test does inside one transaction that is rolled back afterwards.
            template = self._ensure_snapshot(store, graph, node, original)
            wrapper = store.warm(template)
            stack.enter_context(store.swapped(wrapper))
            stack.enter_context(_RolledBack(wrapper, lambda: store.discard_warm(template)))
        else:
            # A fresh copy the test may commit to: for rows created at head (carried back
            # through the later migrations) or a non-atomic migration (e.g. CONCURRENTLY).
            stack.callback(store.drop, store.run_name)
            if initial_state is None:
                template = self._ensure_snapshot(store, graph, node, original)
                store.copy_snapshot(template, store.run_name)
                wrapper = stack.enter_context(store.using(store.run_name))
            else:
                original.close()
                store.clone(store.db_name, store.run_name)
                wrapper = stack.enter_context(store.using(store.run_name))
                initial_state()
                MigrationExecutor(wrapper).migrate([node])
                wrapper.close()  # nothing of the walk back leaks into the test's session
            self._transactional = False
        self._applied = frozenset(_recorded(wrapper))
        self._state = graph.state_for(self._applied)
        return self._state.apps

    def after(self, migrate_to: str | None) -> StateApps:
        """Run the migrations up to ``migrate_to`` and return the apps at that point."""
        if self._stack is None or self._graph is None or self._state is None:
            raise MigrationTestError(f"{self.owner}: call before(migrate_from) first.")
        if self._migrated:
            raise MigrationTestError(f"{self.owner}: after() was already called; call before().")
        graph = self._graph
        node = _resolve(graph, self.app, migrate_to, "migrate_to", self.owner)
        if node in self._applied:
            raise MigrationTestError(
                f"{self.owner}: migrate_to = {node[1]!r} is already applied at migrate_from: "
                "it must come after migrate_from in the migration graph."
            )
        plan = self._plan(graph, node, self._applied)
        if self._transactional and any(not migration.atomic for migration, _ in plan):
            raise MigrationTestError(
                f"{self.owner}: the migrations up to {node[1]!r} include a non-atomic one; "
                "pass migrate_to= to before() so the test gets a copy it may commit to."
            )
        wrapper = connections[self.alias]
        executor = _Executor(wrapper, graph.loader)
        pre_state = self._state.clone()
        emit_pre_migrate_signal(0, False, self.alias, apps=pre_state.apps, plan=plan)
        with inline_only():  # a RunBackfill runs here and now, as a RunPython would
            state = executor.migrate([node], plan=plan, state=pre_state)
        state.clear_delayed_apps_cache()
        post_apps = state.apps
        emit_post_migrate_signal(0, False, self.alias, apps=post_apps, plan=plan)
        self._migrated = True
        return post_apps

    def check_target(self, migrate_to: str | None) -> None:
        """Raise ``MigrationTestError`` unless ``migrate_to`` names a migration of the app."""
        if self._graph is None:
            raise MigrationTestError(f"{self.owner}: call before(migrate_from) first.")
        _resolve(self._graph, self.app, migrate_to, "migrate_to", self.owner)

    def reset(self) -> None:
        """Back to head: the alias points at the test database again; the copy is dropped."""
        stack, self._stack = self._stack, None
        self._state = None
        self._migrated = False
        self._transactional = True
        if stack is not None:
            stack.close()

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _plan(graph: _Graph, node: Node, applied: frozenset[Node]) -> list[tuple[Migration, bool]]:
        return [
            (graph.loader.graph.nodes[n], False)
            for n in graph.loader.graph.forwards_plan(node)
            if n not in applied
        ]

    def _needs_fresh_copy(self, graph: _Graph, node: Node, migrate_to: str | None) -> bool:
        """True when a migration between migrate_from and migrate_to is non-atomic."""
        if not migrate_to or (self.app, migrate_to) not in graph.loader.graph.nodes:
            return False
        at_from = set(graph.loader.graph.forwards_plan(node))
        target: Node = (str(self.app), migrate_to)
        return any(
            not graph.loader.graph.nodes[n].atomic
            for n in graph.loader.graph.forwards_plan(target)
            if n not in at_from
        )

    def _test_database(self, wrapper: BaseDatabaseWrapper) -> BaseDatabaseWrapper:
        """Refuse to touch anything but a test database; let the plugin create a missing one."""
        if not _is_test_database(wrapper) and ensure_test_database is not None:
            ensure_test_database(self.alias)
            wrapper = connections[self.alias]
        if not _is_test_database(wrapper):
            raise MigrationTestError(
                f"{self.owner}: alias {self.alias!r} points at {wrapper.settings_dict['NAME']!r}, "
                "not at a test database; migration tests only run against test databases "
                "(list the alias in the test's `databases`)."
            )
        return wrapper

    def _ensure_snapshot(
        self,
        store: snapshot.SnapshotStore,
        graph: _Graph,
        node: Node,
        original: BaseDatabaseWrapper,
    ) -> str:
        """The snapshot's name, building it when missing: a copy of the test database walked
        back to ``node``, kept as the warm copy (the pristine template is made from it only
        when needed, see ``SnapshotStore``)."""
        store.prune(graph.fingerprint)
        name = store.snapshot_name(graph.fingerprint, f"{node[0]}.{node[1]}")
        if store.has_snapshot(name):
            if name not in store.stats.reused and name not in store.stats.built:
                store.stats.reused.append(name)
            return name
        building = f"{name}_b"
        recorded = _recorded(original)
        original.close()
        # The states of the walk are computed (Python) while the server copies the test
        # database (no Python): neither waits for the other.
        with ThreadPoolExecutor(1) as pool:
            planned = pool.submit(_WalkBack.plan, graph, recorded, node)
            store.clone(store.db_name, building)
            walk = planned.result()
        with store.using(building) as wrapper:
            if walk is None:
                MigrationExecutor(wrapper).migrate([node])
            else:
                walk.run(wrapper)
        store.publish_warm(building, name)
        store.stats.built.append(name)
        return name


class TestMigrations(TransactionTestCase):
    """Test a data migration: seed at ``migrate_from``, assert at ``migrate_to``.

    ``app`` (default: ``MIGTOOLS_DEFAULT_APP``), ``migrate_from``, ``migrate_to`` and
    ``connection`` (alias, default ``"default"``) are class attributes. Each ``test_*`` method
    gets its own fresh copy of the database at ``migrate_from``, so several methods are fine.
    """

    app: ClassVar[str | None] = None
    migrate_from: ClassVar[str | None] = None
    migrate_to: ClassVar[str | None] = None
    connection: ClassVar[str] = DEFAULT_DB_ALIAS

    apps: StateApps
    migrator: Migrator

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "databases" not in cls.__dict__:
            cls.databases = {DEFAULT_DB_ALIAS, cls.connection}

    def setUp(self) -> None:
        super().setUp()
        owner = type(self).__qualname__
        self.migrator = Migrator(owner)
        self.addCleanup(self.migrator.reset)
        overridden = type(self).setup_initial_state is not TestMigrations.setup_initial_state
        before_apps = self.migrator.before(
            self.migrate_from,
            app=self.app,
            connection=self.connection,
            initial_state=self.setup_initial_state if overridden else None,
            migrate_to=self.migrate_to,
        )
        self.migrator.check_target(self.migrate_to)  # before seeding: fail fast
        self.setup_before_migration(before_apps)
        self.apps = self.migrator.after(self.migrate_to)

    def setup_initial_state(self) -> None:
        """Runs at head on the test's copy (current models, factories). Optional."""

    def setup_before_migration(self, apps: StateApps) -> None:
        """Seed rows through ``apps.get_model(...)``: the historical models at migrate_from."""

    def _fixture_teardown(self) -> None:
        # Never flush: the test ran on a copy that is already dropped, and flushing the test
        # database would delete what data migrations seeded (django-test-migrations #438).
        pass
