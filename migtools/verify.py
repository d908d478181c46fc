"""The verifier: findings for a set of migrations in one pass over the migration plan.

The project state is built once: migrations before the first selected one only mutate the
state (nothing rendered), each selected migration is applied to a collecting schema editor
operation by operation (as ``Migration.apply(..., collect_sql=True)`` does, so the SQL is the
SQL ``sqlmigrate`` prints), and each operation's SQL is judged as it is collected. The cost
grows with the plan, not with the plan times the selection: the registry is rendered once, at
the first selected migration, and kept in step in place (``_step``) rather than re-rendered
per operation.
"""

from __future__ import annotations

import ast
import functools
import inspect
import os
import subprocess
import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.apps import apps as django_apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models as dj_models
from django.db.backends.ddl_references import Statement
from django.db.migrations import operations as ops
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState
from django.db.utils import NotSupportedError

from migtools import opcheck
from migtools import settings as mt_settings
from migtools.enforcement import in_baseline
from migtools.errors import UnknownAppError, UsageError
from migtools.rules import Finding, Level, configured_levels
from migtools.sqlcheck import SqlContext

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations.migration import Migration
    from django.db.migrations.operations.base import Operation

Node = tuple[str, str]
Progress = Callable[[int, int], None]


@dataclass
class MigrationReport:
    """One verified migration: its collected SQL (as sqlmigrate prints it) and findings."""

    node: Node
    path: str | None
    entries: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    atomic: bool = True
    op_starts: list[int] = field(default_factory=list)  # entry index where each op begins

    def annotated(self) -> list[str]:
        """``entries`` with each finding as a ``-- migtools: <id>: <message>`` line before
        the statement it concerns (before the operation's header when it has no statement;
        at the top for findings about the whole migration)."""
        before: dict[int, list[Finding]] = {}
        for f in self.findings:
            at = 0
            if f.operation_index is not None and f.operation_index < len(self.op_starts):
                start = self.op_starts[f.operation_index]
                end = (
                    self.op_starts[f.operation_index + 1]
                    if f.operation_index + 1 < len(self.op_starts)
                    else len(self.entries)
                )
                at = start
                if f.sql:
                    needle = f.sql.strip()
                    tail = range(self.op_starts[-1], len(self.entries))
                    for i in [*range(start, end), *tail]:
                        if needle in self.entries[i]:
                            at = i
                            break
            before.setdefault(at, []).append(f)
        out: list[str] = []
        for i, entry in enumerate(self.entries):
            out.extend(
                f"-- migtools: {f.rule_id}: {' '.join(f.message.split())}"
                for f in before.get(i, ())
            )
            out.append(entry)
        if not self.entries:
            out.extend(f"-- migtools: {f.rule_id}: {f.message}" for f in before.get(0, ()))
        return out


@dataclass
class Report:
    migrations: list[MigrationReport] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [f for m in self.migrations for f in m.findings]

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.level is Level.ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.level is Level.WARNING)


# -- selection ---------------------------------------------------------------------------


def load(connection: BaseDatabaseWrapper, *, replace: bool = True) -> MigrationLoader:
    return MigrationLoader(connection, replace_migrations=replace)


def full_plan(loader: MigrationLoader) -> list[Node]:
    """Every node of the graph in an order that respects dependencies (Django's forwards plan
    of each leaf, merged)."""
    plan: list[Node] = []
    seen: set[Node] = set()
    for leaf in sorted(loader.graph.leaf_nodes()):
        for node in loader.graph.forwards_plan(leaf):
            if node not in seen:
                seen.add(node)
                plan.append(node)
    return plan


def default_apps() -> list[str]:
    return [c.label for c in mt_settings.managed_apps()]


def select(
    loader: MigrationLoader,
    *,
    app_label: str | None = None,
    name: str | None = None,
    since: str | None = None,
    unapplied: bool = False,
) -> set[Node]:
    """The nodes to verify. APP [NAME] narrows to one app (and one migration, by name or
    unique prefix); without APP, the managed apps. ``since``: migrations whose files were added
    or changed since that git ref; ``unapplied``: migrations not recorded as applied."""
    if app_label is not None:
        try:
            django_apps.get_app_config(app_label)
        except LookupError:
            raise UnknownAppError(app_label) from None
        labels = {app_label}
    else:
        labels = set(default_apps())
    nodes = {n for n in loader.graph.nodes if n[0] in labels}
    if app_label is None:
        # MIGTOOLS_BASELINE: history adopted as it is (naming the app verifies it anyway).
        nodes = {n for n in nodes if not in_baseline(loader.graph.nodes[n])}
    if name is not None:
        assert app_label is not None
        matches = [n for n in nodes if n[1] == name] or [n for n in nodes if n[1].startswith(name)]
        if len(matches) != 1:
            what = "More than one migration matches" if matches else "Cannot find a migration"
            raise UsageError(f"{what} {name!r} in app {app_label!r}.")
        nodes = set(matches)
    if unapplied:
        nodes -= set(loader.applied_migrations or {})
    if since is not None:
        changed = changed_files(since)
        nodes = {n for n in nodes if _path_of(loader.graph.nodes[n]) in changed}
    return nodes


def changed_files(ref: str) -> set[str]:
    """Absolute paths of files added or changed since ``ref`` (committed, staged, unstaged or
    untracked), from the git checkout holding the project."""
    root = mt_settings.project_root()

    def git(*args: str) -> list[str]:
        proc = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise UsageError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
        return [line for line in proc.stdout.splitlines() if line]

    top = Path(git("rev-parse", "--show-toplevel")[0])
    git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    names = git("diff", "--name-only", "--diff-filter=AMR", ref)
    names += git("ls-files", "--others", "--exclude-standard")
    return {str((top / n).resolve()) for n in names}


def _path_of(migration: Migration) -> str | None:
    """The migration's file, resolved as ``Path.resolve()`` does (each directory is resolved
    once per process: a project's migrations share a handful of them)."""
    module = sys.modules.get(type(migration).__module__)
    file = getattr(module, "__file__", None)
    if not file:
        return None
    file = str(file)
    directory, name = os.path.split(file)
    if not os.path.isabs(directory):
        return os.path.realpath(file)
    path = os.path.join(_real_directory(directory), name)
    return os.path.realpath(path) if os.path.islink(path) else path


@functools.cache
def _real_directory(directory: str) -> str:
    return os.path.realpath(directory)


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
        self.large_tables = (
            large_tables if large_tables is not None else opcheck.large_tables(connection)
        )
        self.managed = set(default_apps())
        self.with_tests = with_tests
        self._tests: opcheck.MigrationTests | None = None

    @property
    def tests(self) -> opcheck.MigrationTests:
        if self._tests is None:
            from migtools.renumber import find_test_files

            files = find_test_files(mt_settings.migration_test_dirs(), mt_settings.project_root())
            self._tests = opcheck.read_migration_tests(files, mt_settings.default_app())
        return self._tests

    def _applied(self) -> set[Node]:
        try:
            return set(MigrationRecorder(self.connection).applied_migrations())
        except Exception:  # no django_migrations table yet: nothing applied
            return set()

    def run(self, selected: Collection[Node], progress: Progress | None = None) -> Report:
        """Verify ``selected`` in plan order, in one linear pass: the state of the migrations
        before the first selected one is built without rendering a model; from there on the
        rendered registry is kept in step operation by operation (see ``_step``)."""
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
        with _one_client_cursor(self.connection):
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
                    _step(state, operation, migration.app_label)
        return Report(out)

    def verify_migration(
        self, migration: Migration, state: ProjectState, new_tables: set[str]
    ) -> MigrationReport:
        """Collect and judge one migration; ``state`` (the state before it) is advanced in
        place and ``new_tables`` grows with the tables it creates."""
        app_label = migration.app_label
        report = MigrationReport(
            (app_label, migration.name), _path_of(migration), atomic=bool(migration.atomic)
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
                    from_state = _step(state, operation, app_label, before=True)
                else:
                    start = len(editor.collected_sql)
                    deferred_before = len(editor.deferred_sql)
                    from_state = _step(
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


# Operations whose state_forwards mutates only the ModelState they name (or adds one): the
# state before them can share every other ModelState with the state after them.
_LOCAL_OPERATIONS: tuple[type, ...] = (
    ops.AddField,
    ops.RemoveField,
    ops.AlterField,
    ops.CreateModel,
    ops.AddIndex,
    ops.RemoveIndex,
    ops.AddConstraint,
    ops.RemoveConstraint,
    ops.AlterModelOptions,
    ops.AlterUniqueTogether,
    ops.AlterModelManagers,
    ops.AlterModelTableComment,
    ops.RunSQL,
    ops.RunPython,
)


def _before(state: ProjectState, operation: Operation, app_label: str) -> ProjectState:
    """A copy of ``state`` that stays the state before ``operation`` once the operation has
    mutated ``state``. ``ProjectState.clone()`` copies every ModelState, which makes a pass
    over the plan quadratic in the number of models; for operations that touch one model
    only that model's ModelState is copied (the rendered registry is cloned as Django does).
    """
    if type(operation) not in _LOCAL_OPERATIONS:
        return state.clone()
    models = dict(state.models)
    name = getattr(operation, "model_name_lower", None) or getattr(operation, "name_lower", None)
    key = (app_label, name) if name else None
    if key is not None and key in models:
        models[key] = models[key].clone()
    before = ProjectState(models=models, real_apps=state.real_apps)
    if "apps" in state.__dict__:
        before.apps = state.apps.clone()
    before.is_delayed = state.is_delayed
    return before


def _step(
    state: ProjectState,
    operation: Operation,
    app_label: str,
    editor: BaseDatabaseSchemaEditor | None = None,
    *,
    before: bool = False,
    problems: list[tuple[str, str]] | None = None,
) -> ProjectState:
    """Advance ``state`` in place over ``operation`` and, given an ``editor``, collect the
    operation's SQL (``database_forwards`` as ``Migration.apply`` calls it). Returns a state
    that reads as the state before the operation for what the rules look at (``before``:
    the caller needs one; otherwise ``state`` itself is returned).

    While nothing is rendered (before the first verified migration) this is Django's
    ``state_forwards`` alone. Once the registry is rendered, Django would re-render the
    touched model (and the models related to it) after every operation and clone the whole
    registry before it: both grow with the size of the project, which makes a pass over the
    plan quadratic. AddField and CreateModel, the bulk of any history, are applied to the
    rendered registry in place instead (``_add_field``, ``_create_model``); other
    operations take Django's path, with a copy of only what they touch as the state before.
    """
    if "apps" in state.__dict__:
        fast = _IN_PLACE.get(type(operation))
        if fast is not None and fast(state, operation, app_label, editor):
            return state
    from_state = _before(state, operation, app_label) if before or editor else state
    operation.state_forwards(app_label, state)
    if editor is not None:
        try:
            operation.database_forwards(app_label, editor, from_state, state)
        except NotSupportedError as exc:
            # e.g. AddIndexConcurrently in an atomic migration: Django refuses to build its
            # SQL; `migrate` would fail the same way. A finding, not a crash.
            if problems is None or "transaction" not in str(exc):
                raise
            problems.append(("concurrently-in-atomic", str(exc)))
    return from_state


def _ignore_reload(*args: object, **kwargs: object) -> None:
    return None


@contextmanager
def _no_reload(state: ProjectState) -> Iterator[None]:
    """Run ``state_forwards`` without Django's re-render of the touched models (the caller
    brings the rendered registry up to date itself)."""
    attrs = vars(state)
    attrs["reload_model"] = attrs["reload_models"] = _ignore_reload
    try:
        yield
    finally:
        del attrs["reload_model"], attrs["reload_models"]


def _add_field(
    state: ProjectState,
    operation: Operation,
    app_label: str,
    editor: BaseDatabaseSchemaEditor | None,
) -> bool:
    """AddField on the rendered model class in place: the new field is contributed to the
    class the registry already holds (the field order, the table and every other field stay
    what a re-render would give), so the cost does not grow with the model's field count nor
    with the number of models. ``schema_editor.add_field`` reads only the table of the model
    it is given, so the class serves as both the model before and the model after.

    Declines (returns False, nothing changed) for what a re-render handles differently:
    many-to-many and primary-key fields, a field name the class already has, models with
    subclasses (children and proxies cache their parents' fields), unrendered models."""
    assert isinstance(operation, ops.AddField)
    new_field = operation.field
    if new_field.many_to_many or new_field.primary_key:
        return False
    try:
        model = state.apps.get_model(app_label, operation.model_name_lower)
    except LookupError:
        return False
    if model._meta.proxy or type.__subclasses__(model):
        return False
    try:
        model._meta.get_field(operation.name)
    except FieldDoesNotExist:
        pass
    else:
        return False
    with _no_reload(state):
        operation.state_forwards(app_label, state)
    rendered = state.models[app_label, operation.model_name_lower].fields[operation.name].clone()
    model.add_to_class(operation.name, rendered)
    if rendered.is_relation:
        target = rendered.remote_field.model
        if isinstance(target, type) and issubclass(target, dj_models.Model):
            target._meta._expire_cache(forward=False)  # type: ignore[attr-defined]
    if editor is not None:
        operation.database_forwards(app_label, editor, state, state)
    return True


def _create_model(
    state: ProjectState,
    operation: Operation,
    app_label: str,
    editor: BaseDatabaseSchemaEditor | None,
) -> bool:
    """CreateModel renders only the new model into the registry (registering it resolves its
    relations and expires the related models' caches); Django would re-render every model
    it is related to, recursively. Declines for a model that inherits from another model or
    a key the state already holds."""
    assert isinstance(operation, ops.CreateModel)
    key = (app_label, operation.name_lower)
    if key in state.models or any(
        isinstance(base, str)
        or (
            isinstance(base, type)
            and issubclass(base, dj_models.Model)
            and base is not dj_models.Model
        )
        for base in operation.bases or ()
    ):
        return False
    with _no_reload(state):
        operation.state_forwards(app_label, state)
    state.models[key].render(state.apps)
    if editor is not None:
        operation.database_forwards(app_label, editor, state, state)
    return True


_InPlace = Callable[[ProjectState, "Operation", str, "BaseDatabaseSchemaEditor | None"], bool]
_IN_PLACE: dict[type, _InPlace] = {ops.AddField: _add_field, ops.CreateModel: _create_model}


@contextmanager
def _one_client_cursor(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """On psycopg 3, Django's PostgreSQL schema editor merges each statement's parameters
    client-side through ``ops.compose_sql``, which opens a Django cursor and a psycopg
    ``ClientCursor`` per statement; for the pass one ``ClientCursor`` on the same connection
    does it (``mogrify`` keeps no state between calls: the text is the same)."""
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    if connection.vendor != "postgresql" or not is_psycopg3:
        yield
        return
    from django.db.backends.postgresql.operations import DatabaseOperations
    from psycopg import ClientCursor

    ops_ = connection.ops
    if getattr(type(ops_), "compose_sql", None) is not DatabaseOperations.compose_sql:
        yield
        return
    connection.ensure_connection()
    client = ClientCursor(connection.connection)

    def compose_sql(sql: str, params: object) -> str:
        return client.mogrify(sql, params)  # type: ignore[arg-type]

    vars(ops_)["compose_sql"] = compose_sql
    try:
        yield
    finally:
        vars(ops_).pop("compose_sql", None)
        client.close()


def _created_tables(migration: Migration, state: ProjectState) -> set[str]:
    from django.db.migrations import operations as ops

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
    selected = {n for n, m in loader.graph.nodes.items() if _path_of(m) in wanted}
    return Verifier(connection, loader).run(selected)


def migration_file_line(migration: Migration) -> int:
    try:
        return inspect.getsourcelines(type(migration))[1]
    except (OSError, TypeError):
        return 1


def lines_for_written(paths: Iterable[str | Path], database: str = "default") -> list[str]:
    """One line per finding in the migration files just written (for makemigrations to
    print), or a single line saying why they could not be verified (no database)."""
    from django.db import connections
    from django.db.utils import OperationalError

    try:
        report = findings_for_files(paths, connections[database])
    except OperationalError as exc:
        return [f"migtools: migrations not verified (database unavailable: {exc})"]
    return [
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
