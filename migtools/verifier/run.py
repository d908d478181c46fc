"""The verifier: findings for a set of migrations in one pass over the migration plan.

The project state is built once: migrations before the first selected one only mutate the
state (nothing rendered), each selected migration is judged by the rule engine
(``migtools.rules.engine``: collected with a collecting schema editor operation by operation,
as ``Migration.apply(..., collect_sql=True)`` does, so the SQL is the SQL ``sqlmigrate``
prints, then judged). The cost grows with the plan, not with the plan times the selection:
the registry is rendered once, at the first selected migration, and kept in step in place
(``migtools.verifier.fast``) rather than re-rendered per operation.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState

from migtools import conf as mt_settings
from migtools import project
from migtools.rules import routing
from migtools.rules.catalogue import configured_levels
from migtools.rules.engine import Engine, large_tables
from migtools.rules.operation import created_tables
from migtools.verifier import offline
from migtools.verifier.fast import one_client_cursor, step
from migtools.verifier.report import MigrationReport, Report
from migtools.verifier.select import default_apps, full_plan, load, path_of, select

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration

Node = tuple[str, str]
Progress = Callable[[int, int], None]


# -- the pass ----------------------------------------------------------------------------


class Verifier:
    """One pass over the plan for the selected nodes (see ``run`` for what counts as new)."""

    def __init__(
        self,
        connection: BaseDatabaseWrapper,
        loader: MigrationLoader | None = None,
        *,
        large_tables: Collection[str] | None = None,
        with_tests: bool = True,
    ) -> None:
        self.connection = connection
        self.loader = loader or load(connection)
        self.levels = configured_levels()
        if large_tables is None:
            large_tables = (
                mt_settings.large_tables()
                if offline.is_offline(connection)
                else _database_large_tables(connection)
            )
        self.large_tables = large_tables
        self.managed = set(default_apps())
        self.with_tests = with_tests
        self._tests: project.MigrationTests | None = None
        self.engine = Engine(
            connection,
            large_tables=self.large_tables,
            levels=self.levels,
            managed=self.managed,
            tests=self._read_tests if with_tests else None,
            step=step,
        )

    @property
    def tests(self) -> project.MigrationTests:
        if self._tests is None:
            files = project.find_test_files(mt_settings.migration_test_dirs(), project.root())
            self._tests = project.read_migration_tests(files, mt_settings.default_app())
        return self._tests

    def _read_tests(self) -> project.MigrationTests:
        return self.tests

    def run(
        self,
        selected: Collection[Node],
        progress: Progress | None = None,
        *,
        one_deploy: bool = False,
        deployed: Collection[Node] | None = None,
        judged: Collection[Node] | None = None,
    ) -> Report:
        """Verify ``selected`` in plan order, in one linear pass: the state of the migrations
        before the first selected one is built without rendering a model; from there on the
        rendered registry is kept in step operation by operation (see
        ``migtools.verifier.fast.step``).

        What counts as a new table (operations on it lock nothing in use): with
        ``one_deploy`` (``--since``, ``--unapplied``, ``migrate``'s preflight: the selection
        is one deploy) a table created by any selected migration is new in every later one;
        without it (a full run) each migration is judged as production meets it, with every
        earlier migration deployed: a table is new only in the migration that creates it.
        ``deployed``: the unselected migrations the state is built from (default: every
        earlier node of the plan; the preflight passes the applied ones). ``judged``: of the
        selected nodes, only these are judged (the preflight: the checked ones); the others
        only advance the state (no SQL collected) and, with ``one_deploy``, the tables they
        create count as new."""
        wanted = set(selected)
        to_judge = wanted if judged is None else wanted & set(judged)
        if not to_judge:
            return Report()
        plan = full_plan(self.loader)
        if deployed is not None:
            keep = wanted | set(deployed)
            plan = [n for n in plan if n in keep]
        positions = [i for i, n in enumerate(plan) if n in to_judge]
        nodes = self.loader.graph.nodes
        state = ProjectState(real_apps=self.loader.unmigrated_apps)
        deploy_tables: set[str] = set()
        out: list[MigrationReport] = []
        with one_client_cursor(self.connection):
            for node in plan[: positions[-1] + 1]:
                migration = nodes[node]
                if node in to_judge:
                    new_tables = deploy_tables if one_deploy else set()
                    out.append(self.verify_migration(migration, state, new_tables))
                    if progress is not None:
                        progress(len(out), len(positions))
                    continue
                if one_deploy and node in wanted:
                    deploy_tables |= created_tables(migration)
                for operation in migration.operations:
                    step(state, operation, migration.app_label)
        return Report(out, new_tables=frozenset(deploy_tables))

    def verify_migration(
        self, migration: Migration, state: ProjectState, new_tables: set[str]
    ) -> MigrationReport:
        """Judge one migration with the rule engine; ``state`` (the state before it) is
        advanced in place and ``new_tables`` grows with the tables it creates."""
        path = path_of(migration)
        judged = self.engine.judge(migration, state, new_tables, path=path)
        return MigrationReport(
            (migration.app_label, migration.name),
            path,
            entries=judged.entries,
            findings=judged.findings,
            atomic=bool(migration.atomic),
            op_starts=judged.op_starts,
        )


_database_large_tables = large_tables


def verify(
    connection: BaseDatabaseWrapper,
    *,
    app_label: str | None = None,
    name: str | None = None,
    since: str | None = None,
    unapplied: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Verify the selection on ``connection``'s database: only the migrations the router lets
    run there are reported (``migtools.rules.routing``)."""
    loader = load(connection)
    selected = select(loader, app_label=app_label, name=name, since=since, unapplied=unapplied)
    one_deploy = since is not None or unapplied
    report = Verifier(connection, loader).run(selected, progress, one_deploy=one_deploy)
    nodes = loader.graph.nodes
    report.migrations = [
        m for m in report.migrations if routing.runs_on(nodes[m.node], connection.alias)
    ]
    return report


def merge(reports: Iterable[Report]) -> Report:
    """One report of the same selection verified on several databases: each migration once
    (the SQL of the first database it runs on), with the findings of every database (each
    carries its alias); a finding about the whole migration that every database repeats is
    kept once."""
    by_node: dict[Node, MigrationReport] = {}
    seen: set[tuple[object, ...]] = set()
    for report in reports:
        for m in report.migrations:
            merged = by_node.setdefault(
                m.node,
                MigrationReport(m.node, m.path, m.entries, [], m.atomic, m.op_starts),
            )
            for f in m.findings:
                key: tuple[object, ...] = (f.rule_id, f.operation_index, f.message, f.sql)
                if f.operation_index is not None:
                    key += (f.database,)
                if (m.node, key) in seen:
                    continue
                seen.add((m.node, key))
                merged.findings.append(f)
    return Report(list(by_node.values()))


def findings_for_files(paths: Iterable[str | Path], connection: BaseDatabaseWrapper) -> Report:
    """Verify the migrations defined in ``paths`` (e.g. the files makemigrations just wrote)."""
    wanted = {str(Path(p).resolve()) for p in paths}
    loader = load(connection)
    selected = {n for n, m in loader.graph.nodes.items() if path_of(m) in wanted}
    # The files just written are unapplied and deploy together.
    return Verifier(connection, loader).run(selected, one_deploy=True)


def lines_for_written(paths: Iterable[str | Path], database: str = "default") -> list[str]:
    """One line per finding in the migration files just written (for makemigrations to
    print); when the database cannot be reached, verified offline, with one line saying so
    first (``migtools.verifier.offline``)."""
    from django.db.utils import OperationalError

    try:
        with offline.reachable_or_offline(database) as (connection, offline_run):
            report = findings_for_files(paths, connection)
    except OperationalError as exc:
        return [f"migtools: migrations not verified ({offline.first_line(exc)})"]
    lines = [offline_run.line()] if offline_run is not None else []
    return lines + [
        f"migtools: {f.path}:{f.line}: {f.level}: [{f.rule_id}] {f.message}"
        for f in report.findings
    ]
