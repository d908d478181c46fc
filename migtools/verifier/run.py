"""The verifier: findings for a set of migrations in one pass over the migration plan.

The project state is built once: migrations before the first selected one only mutate the
state (nothing rendered), each selected migration is applied to a collecting schema editor
operation by operation (as ``Migration.apply(..., collect_sql=True)`` does, so the SQL is the
SQL ``sqlmigrate`` prints), and each operation's SQL is judged as it is collected. The cost
grows with the plan, not with the plan times the selection: the registry is rendered once, at
the first selected migration, and kept in step in place (``migtools.verifier.fast``) rather than re-rendered
per operation.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.db.backends.ddl_references import Statement
from django.db.migrations import operations as ops
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState

from migtools import conf as mt_settings
from migtools import project
from migtools.rules import operation as opcheck
from migtools.rules.catalogue import Finding, configured_levels
from migtools.rules.sql import SqlContext
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
    """One pass over the plan for the selected nodes.

    Tables created within the selected or unapplied migrations count as new (operations on
    them lock nothing in use), with two readings of "unapplied" made precise: a selected
    migration recorded as applied in this database created tables that exist (they count as
    new only within that migration), and an unselected unapplied migration counts only in an
    app with applied migrations here (an empty CI database says nothing about production).
    """

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
            offline_ = offline.is_offline(connection)
            large_tables = (
                mt_settings.large_tables() if offline_ else opcheck.large_tables(connection)
            )
        self.large_tables = large_tables
        self.managed = set(default_apps())
        self.with_tests = with_tests
        self._tests: project.MigrationTests | None = None

    @property
    def tests(self) -> project.MigrationTests:
        if self._tests is None:
            files = project.find_test_files(mt_settings.migration_test_dirs(), project.root())
            self._tests = project.read_migration_tests(files, mt_settings.default_app())
        return self._tests

    def _applied(self) -> set[Node]:
        assumed = offline.applied_nodes(self.connection, self.loader.graph.nodes)
        if assumed is not None:  # offline: what only the database knows is assumed deployed
            return assumed
        try:
            return set(MigrationRecorder(self.connection).applied_migrations())
        except Exception:  # no django_migrations table yet: nothing applied
            return set()

    def run(self, selected: Collection[Node], progress: Progress | None = None) -> Report:
        """Verify ``selected`` in plan order, in one linear pass: the state of the migrations
        before the first selected one is built without rendering a model; from there on the
        rendered registry is kept in step operation by operation (see ``migtools.verifier.fast.step``)."""
        if not selected:
            return Report()
        plan = full_plan(self.loader)
        wanted = set(selected)
        positions = [i for i, n in enumerate(plan) if n in wanted]
        applied = self._applied()
        history = {a for a, _ in applied}
        nodes = self.loader.graph.nodes
        state = ProjectState(real_apps=self.loader.unmigrated_apps)
        new_tables: set[str] = set()
        out: list[MigrationReport] = []
        with one_client_cursor(self.connection):
            for node in plan[: positions[-1] + 1]:
                migration = nodes[node]
                if node in wanted:
                    known = set(new_tables)
                    out.append(self.verify_migration(migration, state, new_tables))
                    if node in applied:  # its tables exist in this database
                        new_tables.intersection_update(known)
                    if progress is not None:
                        progress(len(out), len(positions))
                    continue
                if node not in applied and node[0] in history:
                    new_tables.update(_created_tables(migration, state))
                for operation in migration.operations:
                    step(state, operation, migration.app_label)
        return Report(out)

    def verify_migration(
        self, migration: Migration, state: ProjectState, new_tables: set[str]
    ) -> MigrationReport:
        """Collect and judge one migration; ``state`` (the state before it) is advanced in
        place and ``new_tables`` grows with the tables it creates."""
        app_label = migration.app_label
        report = MigrationReport(
            (app_label, migration.name), path_of(migration), atomic=bool(migration.atomic)
        )
        ctx = SqlContext(
            atomic=bool(migration.atomic), new_tables=new_tables, large_tables=self.large_tables
        )
        has_ddl = has_data = False
        entries = report.entries
        with self.connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
            begin = getattr(editor, "migtools_begin", None)
            if begin is not None:  # migtools' backend: show the SQL `migrate` really runs
                begin(migration)
            # What the editor would refuse when migrating, and operations Django cannot
            # build SQL for here; each becomes a finding of the operation that caused it.
            refusals: list[tuple[str, str]] = getattr(editor, "migtools_refusals", [])
            for index, operation in enumerate(migration.operations):
                refused_before = len(refusals)
                report.op_starts.append(len(entries))
                entries += ["--", f"-- {operation.describe()}", "--"]
                if not operation.reduces_to_sql:
                    entries.append("-- THIS OPERATION CANNOT BE WRITTEN AS SQL")
                    sql: list[str] = []
                    # Django's apply() skips state_forwards here (it collects one migration
                    # only); a pass over the plan must keep the state right.
                    from_state = step(state, operation, app_label, before=True)
                else:
                    start = len(editor.collected_sql)
                    deferred_before = len(editor.deferred_sql)
                    from_state = step(
                        state, operation, app_label, editor, before=True, problems=refusals
                    )
                    sql = editor.collected_sql[start:]
                    entries.extend(sql)
                    editor.collected_sql[start:] = []
                    if not sql:
                        entries.append("-- (no-op)")
                    # Deferred statements (FKs, indexes of new tables) run at the end of the
                    # migration but belong to the operation that queued them.
                    sql = sql + _deferred_texts(editor, editor.deferred_sql[deferred_before:])
                result = opcheck.judge_operation(
                    migration,
                    operation,
                    from_state,
                    self.connection,
                    sql,
                    ctx,
                    index=index,
                    levels=self.levels,
                    refusals=refusals[refused_before:],
                )
                has_ddl = has_ddl or result.has_ddl
                has_data = has_data or result.has_data
                report.findings.extend(result.findings)
        entries.extend(editor.collected_sql)  # the deferred statements, run at exit
        report.findings.extend(
            opcheck.check_migration(
                migration,
                managed=app_label in self.managed,
                has_ddl=has_ddl,
                has_data=has_data,
                tests=self.tests if self.with_tests and app_label in self.managed else None,
                levels=self.levels,
            )
        )
        if report.findings and report.path:
            _locate(report)
        return report


def _created_tables(migration: Migration, state: ProjectState) -> set[str]:

    tables: set[str] = set()
    for operation in migration.operations:
        for op in opcheck.database_operations(operation):
            if isinstance(op, ops.CreateModel):
                table = op.options.get("db_table")
                tables.add(str(table) if table else f"{migration.app_label}_{op.name_lower}")
    return tables


def _locate(report: MigrationReport) -> None:
    """Fill each finding's path and line (the operation's line in the migration file)."""
    assert report.path is not None
    try:
        tree = ast.parse(Path(report.path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        tree = None
    class_line = 1
    op_lines: list[int] = []
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.ClassDef) and node.name == "Migration":
            class_line = node.lineno
            for stmt in node.body:
                if (
                    isinstance(stmt, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "operations" for t in stmt.targets)
                    and isinstance(stmt.value, ast.List | ast.Tuple)
                ):
                    op_lines = [e.lineno for e in stmt.value.elts]
    located = []
    for f in report.findings:
        line = class_line
        if f.operation_index is not None and f.operation_index < len(op_lines):
            line = op_lines[f.operation_index]
        located.append(_replace(f, path=report.path, line=line))
    report.findings = located


def _replace(finding: Finding, **changes: object) -> Finding:
    from dataclasses import replace

    return replace(finding, **changes)  # type: ignore[arg-type]


def verify(
    connection: BaseDatabaseWrapper,
    *,
    app_label: str | None = None,
    name: str | None = None,
    since: str | None = None,
    unapplied: bool = False,
    progress: Progress | None = None,
) -> Report:
    loader = load(connection)
    selected = select(loader, app_label=app_label, name=name, since=since, unapplied=unapplied)
    return Verifier(connection, loader).run(selected, progress)


def findings_for_files(paths: Iterable[str | Path], connection: BaseDatabaseWrapper) -> Report:
    """Verify the migrations defined in ``paths`` (e.g. the files makemigrations just wrote)."""
    wanted = {str(Path(p).resolve()) for p in paths}
    loader = load(connection)
    selected = {n for n, m in loader.graph.nodes.items() if path_of(m) in wanted}
    return Verifier(connection, loader).run(selected)


def migration_file_line(migration: Migration) -> int:
    try:
        return inspect.getsourcelines(type(migration))[1]
    except (OSError, TypeError):
        return 1


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


def _deferred_texts(editor: Any, statements: Iterable[Any]) -> list[str]:
    collect = getattr(editor, "migtools_collect", None)
    if collect is not None:  # migtools' backend: the statements as migrate will run them
        return [text for statement in statements for text in collect(statement)]
    return [text for statement in statements if (text := _statement_text(statement))]


def _statement_text(statement: Any) -> str:
    """The SQL of a deferred statement. Templates of migtools' backend may render to a list of
    statements (``str()`` of such a ``Statement`` fails), so render first, then join."""
    rendered = (
        statement.template % statement.parts if isinstance(statement, Statement) else statement
    )
    if isinstance(rendered, list):
        return "\n".join(str(part).rstrip(";") + ";" for part in rendered)
    return str(rendered)
