"""The ``Migrator``: one migration round trip on one alias (``TestMigrations`` in ``case.py`` and
the ``migtools_migrator`` fixture build on it).

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

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.creation import TEST_DATABASE_PREFIX
from django.db.migrations.exceptions import IrreversibleError
from django.db.migrations.migration import Migration
from django.db.migrations.state import ProjectState, StateApps

from migtools import dberrors
from migtools.backfill.runners import inline_only
from migtools.conf import default_app
from migtools.errors import MigrationTestError
from migtools.rules import routing
from migtools.testing import forward, history, snapshot, walk
from migtools.testing.history import Graph, Node
from migtools.testing.rollback import RolledBack

__all__ = ["MigrationTestError", "Migrator"]


def _check_alias(alias: str, owner: str) -> BaseDatabaseWrapper:
    if alias not in connections.settings:
        unknown = dberrors.unknown_alias(alias, "set connection to one of them")
        raise MigrationTestError(f"{owner}: connection = {alias!r}: {unknown}")
    return connections[alias]


def _is_test_database(wrapper: BaseDatabaseWrapper) -> bool:
    """Django's test runner (and pytest-django) renamed the alias' database already."""
    name = wrapper.settings_dict["NAME"]
    test_name = (wrapper.settings_dict.get("TEST") or {}).get("NAME")
    return bool(name) and (name == test_name or str(name).startswith(TEST_DATABASE_PREFIX))


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
        self._graph: Graph | None = None
        self._applied: frozenset[Node] = frozenset()
        self._state: ProjectState | None = None
        self._migrated = False
        self._transactional = True
        self._rolled_back: RolledBack | None = None

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
        graph = self._graph = history.load_for(self.app, (migrate_from, migrate_to))
        node = history.resolve(graph, self.app, migrate_from, "migrate_from", self.owner)
        if migrate_to is not None:  # fail before any database is copied
            target = history.resolve(graph, self.app, migrate_to, "migrate_to", self.owner)
            self._check_routed(graph, target)
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
            self._rolled_back = stack.enter_context(
                RolledBack(wrapper, lambda: store.discard_warm(template))
            )
        else:
            # A fresh copy the test may commit to: for rows created at head (carried back
            # through the later migrations) or a non-atomic migration (e.g. CONCURRENTLY).
            stack.callback(store.drop, store.run_name)
            if initial_state is None:
                template = self._ensure_snapshot(store, graph, node, original)
                store.copy_snapshot(template, store.run_name)
                wrapper = stack.enter_context(store.using(store.run_name))
            else:
                self._refuse_irreversible(graph, history.recorded(original), node)
                original.close()
                store.clone(store.db_name, store.run_name)
                wrapper = stack.enter_context(store.using(store.run_name))
                initial_state()
                walk.walk_back(wrapper, None, node)
                wrapper.close()  # nothing of the walk back leaks into the test's session
            self._transactional = False
        self._applied = frozenset(history.recorded(wrapper))
        self._state = graph.state_for(self._applied)
        return self._state.apps

    def after(self, migrate_to: str | None) -> StateApps:
        """Run the migrations up to ``migrate_to`` and return the apps at that point."""
        if self._stack is None or self._graph is None or self._state is None:
            raise MigrationTestError(f"{self.owner}: call before(migrate_from) first.")
        if self._migrated:
            raise MigrationTestError(f"{self.owner}: after() was already called; call before().")
        graph = self._graph
        node = history.resolve(graph, self.app, migrate_to, "migrate_to", self.owner)
        if node in self._applied:
            raise MigrationTestError(
                f"{self.owner}: migrate_to = {node[1]!r} is already applied at migrate_from: "
                "it must come after migrate_from in the migration graph."
            )
        self._check_routed(graph, node)
        plan = self._plan(graph, node, self._applied)
        if self._transactional and any(not migration.atomic for migration, _ in plan):
            raise MigrationTestError(
                f"{self.owner}: the migrations up to {node[1]!r} include a non-atomic one; "
                "pass migrate_to= to before() so the test gets a copy it may commit to."
            )
        wrapper = connections[self.alias]
        rolled_back = self._rolled_back if self._transactional else None

        def progress(action: str, *args: object) -> None:
            if action == "apply_success" and rolled_back is not None:
                rolled_back.settle()  # as the migration's own commit would

        if rolled_back is not None:
            rolled_back.settle()  # as the commit that ends seeding would
        executor = walk.executor(wrapper, graph.loader, progress)
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
        history.resolve(self._graph, self.app, migrate_to, "migrate_to", self.owner)

    def reset(self) -> None:
        """Back to head: the alias points at the test database again; the copy is dropped."""
        stack, self._stack = self._stack, None
        self._state = None
        self._migrated = False
        self._transactional = True
        self._rolled_back = None
        if stack is not None:
            stack.close()

    # -- internals ------------------------------------------------------------------------

    def _check_routed(self, graph: Graph, node: Node) -> None:
        """The migration under test must run on this alias (the router decides where its
        tables live): otherwise the round trip would migrate, seed and assert on a database
        that never sees it."""
        migration = graph.loader.graph.nodes[node]
        if routing.runs_on(migration, self.alias):
            return
        where = [alias for alias in connections if routing.runs_on(migration, alias)]
        lives = (
            f"runs on {', '.join(repr(a) for a in where)} (where the router puts its tables)"
            if where
            else "runs on no database the router allows"
        )
        hint = f": set connection = {where[0]!r}" if len(where) == 1 else ""
        raise MigrationTestError(
            f"{self.owner}: connection = {self.alias!r}, but {node[0]}.{node[1]} {lives}, not "
            f"on {self.alias!r}{hint}."
        )

    @staticmethod
    def _plan(graph: Graph, node: Node, applied: frozenset[Node]) -> list[tuple[Migration, bool]]:
        return [
            (graph.loader.graph.nodes[n], False)
            for n in graph.loader.graph.forwards_plan(node)
            if n not in applied
        ]

    def _needs_fresh_copy(self, graph: Graph, node: Node, migrate_to: str | None) -> bool:
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
        graph: Graph,
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
        recorded = history.recorded(original)
        original.close()
        # Read from the operations first: a walk back that would meet one that cannot run
        # backwards is not started; the snapshot is built forwards instead.
        blocked = walk.irreversible(graph, recorded, node) is not None
        if not blocked:
            try:
                # The states of the walk are computed (Python) while the server copies the
                # test database (no Python): neither waits for the other.
                with ThreadPoolExecutor(1) as pool:
                    planned = pool.submit(walk.prepare, graph, recorded, node)
                    store.clone(store.db_name, building)
                    prepared = planned.result()
                with store.using(building) as wrapper:
                    walk.walk_back(wrapper, prepared, node)
            except (IrreversibleError, NotImplementedError):
                # An operation that said it was reversible and was not: forwards after all.
                store.drop(building)
                blocked = True
        if blocked:
            self._build_forwards(store, graph, recorded, node, building)
            store.stats.forward.append(name)
        store.publish_warm(building, name)
        store.stats.built.append(name)
        return name

    def _build_forwards(
        self,
        store: snapshot.SnapshotStore,
        graph: Graph,
        recorded: set[Node],
        node: Node,
        building: str,
    ) -> None:
        """``building`` becomes the database at ``node`` made forwards from an empty one."""
        unapply = walk.unapply_plan(graph, recorded, node)
        if unapply is None:
            raise MigrationTestError(
                f"{self.owner}: cannot build the database at {node[0]}.{node[1]}: the test "
                "database holds a squashed migration only partly applied; recreate it "
                "(--create-db)."
            )
        store.create_empty(building)
        try:
            with store.using(building) as wrapper:
                forward.build(wrapper, graph, unapply[1])
        except BaseException:
            store.drop(building)
            raise

    def _refuse_irreversible(self, graph: Graph, recorded: set[Node], node: Node) -> None:
        """``setup_initial_state()`` rows are carried back through the later migrations:
        impossible past one that cannot run backwards; say which, and what to do."""
        blocker = walk.irreversible(graph, recorded, node)
        if blocker is not None:
            raise MigrationTestError(
                f"{self.owner}: setup_initial_state() creates rows at head that must be walked "
                f"back to {node[1]!r}, and {blocker} cannot run backwards. Seed the rows in "
                "setup_before_migration(apps) instead (the state at migrate_from is then built "
                "forwards)."
            )
