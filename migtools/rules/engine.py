"""The rule engine: judge one migration, the one place every caller goes through.

``Engine.judge`` collects what the migration asks of the database with a collecting schema
editor on the given state and connection (the statements the configured backend will run,
as ``sqlmigrate`` prints them), and runs on them the operation rules
(``migtools.rules.operation``), the SQL rules (``migtools.rules.sql``, pglast) and the rules
about the migration as a whole. The verifier, ``sqlmigrate``, makemigrations' findings, the
``migrate`` preflight and the apply-time backstop all call it; no rule is implemented twice.

A refusal raised while collecting (a DELETE-phase ``SafeRemoveField`` with no earlier
MOVE_TO_PENDING, a MOVE_TO_PENDING of a NOT NULL field, ``AddIndexConcurrently`` in an
atomic migration) becomes a finding of the operation that raised it, never an exception that
stops the report.

Some SQL cannot be collected without applying the migrations before it: an operation that
looks the database catalog up (``AlterUniqueTogether`` removing a constraint of a table an
empty database does not have yet), a value the client cannot quote before an earlier
migration registers its type (``HStoreField(default={})`` before ``CREATE EXTENSION hstore``
ran), a custom ``database_forwards`` that queries or raises. Such an operation is judged by
the operation alone (the operation rules, no SQL rules) with a ``sql-not-collected``
warning; the state still advances, so the migrations after it are judged right. On a live
connection inside a transaction, an operation that is not Django's or migtools' own is
collected under a savepoint, so a failed query never leaves the transaction aborted. A
``RunPython`` inside a ``SeparateDatabaseAndState`` is not run while collecting (as a
top-level one is not).
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from django.db import transaction
from django.db.backends.ddl_references import Statement
from django.db.migrations import operations as ops
from django.db.migrations.exceptions import IrreversibleError
from django.db.utils import NotSupportedError

from migtools import source as pysource
from migtools.errors import PendingDeletionError, UnsafeMigrationError
from migtools.rules import data, routing
from migtools.rules import operation as oprules
from migtools.rules.catalogue import (
    CATALOGUE,
    Finding,
    Level,
    configured_levels,
    effective_level,
    hint,
)
from migtools.rules.sql import Hit, SqlContext, check, is_data_statement

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations.migration import Migration
    from django.db.migrations.operations.base import Operation
    from django.db.migrations.state import ProjectState

    from migtools.project import MigrationTests

Guard = Callable[[Exception], bool]

# Unapplying a migration drops what it added and re-adds what it removed: those are the
# point of the reversal, not a hazard of it.
_NOT_JUDGED_BACKWARDS = frozenset(
    {"drop-column", "drop-table", "not-null-without-db-default", "default-not-db-default"}
)


class Step(Protocol):
    """Advance ``state`` in place over ``operation`` and, given an editor, collect its SQL;
    return the state before the operation. ``guard`` sees an exception raised while
    building the SQL and returns True to swallow it (the state is advanced all the same)."""

    def __call__(
        self,
        state: ProjectState,
        operation: Operation,
        app_label: str,
        editor: BaseDatabaseSchemaEditor | None = None,
        *,
        before: bool = False,
        guard: Guard | None = None,
    ) -> ProjectState: ...


def django_step(
    state: ProjectState,
    operation: Operation,
    app_label: str,
    editor: BaseDatabaseSchemaEditor | None = None,
    *,
    before: bool = False,
    guard: Guard | None = None,
) -> ProjectState:
    """Django's own path (``Migration.apply`` does exactly this per operation)."""
    from_state = state.clone() if before or editor is not None else state
    operation.state_forwards(app_label, state)
    if editor is not None:
        try:
            operation.database_forwards(app_label, editor, from_state, state)
        except Exception as exc:
            if guard is None or not guard(exc):
                raise
    return from_state


@dataclass
class Judgement:
    """One judged migration: the SQL entries (as ``sqlmigrate`` prints them), where each
    operation's entries begin, and the findings (located at file:line when the file is
    known)."""

    entries: list[str] = field(default_factory=list)
    op_starts: list[int] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def refusals(self) -> list[Finding]:
        """The findings ``migrate`` refuses: error-level and about the database."""
        return [f for f in self.findings if f.refuses]


@dataclass(frozen=True)
class _Raised:
    """A refusal an operation raised while its SQL was collected."""

    rule_id: str
    message: str


class Engine:
    """Judges migrations for one connection with one set of settings.

    ``large_tables``: tables whose index builds must be post-deployment (the caller reads
    them from the database once: ``large_tables(connection)``). ``managed``: the app labels
    migtools manages (only their migrations must be CheckedMigrations and have tests).
    ``tests``: returns the migration tests read from the repository (None: no test rules).
    ``step``: how the state is advanced (the verifier passes its fast path).
    """

    def __init__(
        self,
        connection: BaseDatabaseWrapper,
        *,
        large_tables: Collection[str] = (),
        levels: dict[str, Level] | None = None,
        managed: Collection[str] = (),
        tests: Callable[[], MigrationTests | None] | None = None,
        step: Step = django_step,
    ) -> None:
        self.connection = connection
        self.large_tables = large_tables
        self.levels = levels if levels is not None else configured_levels()
        self.managed = frozenset(managed)
        self.tests = tests
        self.step = step

    # -- forwards ------------------------------------------------------------------------

    def judge(
        self,
        migration: Migration,
        state: ProjectState,
        new_tables: set[str] | None = None,
        *,
        path: str | None = None,
    ) -> Judgement:
        """Collect and judge ``migration`` applied forwards to ``state`` (the state before
        it, advanced in place). ``new_tables`` (tables that count as new: nothing in use
        locks on them) grows with the tables the migration creates."""
        app_label = migration.app_label
        if new_tables is None:
            new_tables = set()
        ctx = SqlContext(
            atomic=bool(migration.atomic), new_tables=new_tables, large_tables=self.large_tables
        )
        out = Judgement()
        entries = out.entries
        has_ddl = has_data = False
        with self.connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
            begin = getattr(editor, "migtools_begin", None)
            if begin is not None:  # migtools' backend: the SQL `migrate` really runs
                begin(migration)
            for index, operation in enumerate(migration.operations):
                raised: list[_Raised] = []
                out.op_starts.append(len(entries))
                entries += ["--", f"-- {operation.describe()}", "--"]
                if not routing.routed(operation, app_label, self.connection.alias, state):
                    # The router skips it on this database: neither judged nor counted here.
                    entries.append(
                        f"-- (not run on database {self.connection.alias!r}: the router skips it)"
                    )
                    self.step(state, operation, app_label, before=True)
                    continue
                if not operation.reduces_to_sql and not _checks_itself(operation):
                    entries.append("-- THIS OPERATION CANNOT BE WRITTEN AS SQL")
                    sql: list[str] = []
                    # Django's apply() skips state_forwards here (it collects one migration
                    # only); a pass over the plan must keep the state right.
                    from_state = self.step(state, operation, app_label, before=True)
                else:
                    start = len(editor.collected_sql)
                    deferred_before = len(editor.deferred_sql)
                    failed: list[Exception] = []
                    with _savepoint(self.connection, operation):
                        from_state = self.step(
                            state,
                            _collectable(operation),
                            app_label,
                            editor,
                            before=True,
                            guard=functools.partial(
                                _refusal_or_failure, operation, raised=raised, failed=failed
                            ),
                        )
                    if failed:
                        # Judged by the operation alone: what it collected before failing is
                        # not what `migrate` runs.
                        del editor.collected_sql[start:]
                        del editor.deferred_sql[deferred_before:]
                        entries.append(f"-- migtools: SQL not collected ({_reason(failed[0])})")
                        raised.append(_not_collected(operation, failed[0]))
                        sql = []
                    else:
                        sql = editor.collected_sql[start:]
                        entries.extend(sql)
                        editor.collected_sql[start:] = []
                        # A MOVE_TO_PENDING changes the state only: "(no-op)", as Django
                        # prints for every operation that collects no SQL.
                        own = _checks_itself(operation)
                        if not operation.reduces_to_sql and not own:
                            entries.append("-- THIS OPERATION CANNOT BE WRITTEN AS SQL")
                        elif not sql and (not raised or own):
                            entries.append("-- (no-op)")
                        # Deferred statements (FKs, indexes of new tables) run at the end of
                        # the migration but belong to the operation that queued them.
                        sql = sql + deferred_texts(editor, editor.deferred_sql[deferred_before:])
                findings, ddl, data = self._operation(
                    migration, operation, from_state, sql, ctx, index, raised
                )
                has_ddl = has_ddl or ddl
                has_data = has_data or data
                out.findings.extend(findings)
        entries.extend(editor.collected_sql)  # the deferred statements, run at exit
        tests = None
        if self.tests is not None and app_label in self.managed:
            tests = self.tests()
        out.findings.extend(
            oprules.check_migration(
                migration,
                managed=app_label in self.managed,
                has_ddl=has_ddl,
                has_data=has_data,
                tests=tests,
                levels=self.levels,
            )
        )
        _locate(out, path if path is not None else migration_path(migration), self.connection.alias)
        return out

    def _operation(
        self,
        migration: Migration,
        operation: Operation,
        from_state: ProjectState,
        sql: list[str],
        ctx: SqlContext,
        index: int,
        raised: list[_Raised],
    ) -> tuple[list[Finding], bool, bool]:
        """Operation rules and SQL rules for one operation; ``ctx.new_tables`` grows with the
        tables its SQL creates. Findings carry their effective levels; OFF ones are dropped,
        as are stage-aware rules in a stage that allows them (what the operation itself
        raised is never allowed: it is the operation refusing)."""
        app_label = migration.app_label
        stage = oprules.operation_stage(migration, operation)
        ctx.stage = stage
        ctx.old_types = oprules.old_types(operation, app_label, from_state, self.connection)
        op_hits = oprules.operation_hits(operation)
        op_hits += [
            oprules.OpHit(rule_id, message)
            for rule_id, message in data.hits(migration, operation, from_state, ctx.large_tables)
        ]
        sql_hits, parsed = check(sql, ctx)
        has_data = isinstance(operation, ops.RunPython) or any(
            is_data_statement(s.node) for s in parsed
        )
        has_ddl = any(s.node is not None and not is_data_statement(s.node) for s in parsed)
        findings: list[Finding] = []
        description = operation.describe()
        hits: list[Hit | oprules.OpHit | _Raised] = [*sql_hits, *op_hits, *raised]
        for h in hits:
            if stage in CATALOGUE[h.rule_id].allowed_in and not isinstance(h, _Raised):
                continue
            level = self._level(h.rule_id, migration)
            if level is Level.OFF:
                continue
            findings.append(
                Finding(
                    h.rule_id,
                    level,
                    h.message,
                    app_label=app_label,
                    migration_name=migration.name,
                    operation_index=index,
                    operation=description,
                    sql=h.statement if isinstance(h, Hit) else None,
                    statement_index=h.statement_index if isinstance(h, Hit) else None,
                )
            )
        return _twins_grouped(findings), has_ddl, has_data

    def _level(self, rule_id: str, migration: Migration) -> Level:
        return effective_level(rule_id, migration, levels=self.levels)

    # -- backwards -----------------------------------------------------------------------

    def judge_backwards(
        self, migration: Migration, state: ProjectState, *, path: str | None = None
    ) -> Judgement:
        """Collect and judge unapplying ``migration``; ``state`` is the state before it (as
        ``Migration.unapply`` takes it; not changed). Only the SQL rules apply, minus the
        drops and adds that are the point of the reversal; tables the migration created
        count as new."""
        app_label = migration.app_label
        to_run: list[tuple[int, Operation, ProjectState, ProjectState]] = []
        new_state = state.clone()
        for index, operation in enumerate(migration.operations):
            new_state = new_state.clone()  # each operation's own pair of states
            old_state = new_state.clone()
            operation.state_forwards(app_label, new_state)
            to_run.insert(0, (index, operation, old_state, new_state))
        ctx = SqlContext(
            atomic=bool(migration.atomic),
            new_tables=oprules.created_tables(migration),
            large_tables=self.large_tables,
        )
        out = Judgement()
        with self.connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
            begin = getattr(editor, "migtools_begin", None)
            if begin is not None:
                begin(migration, backwards=True)
            for index, operation, to_state, from_state in to_run:
                if not operation.reduces_to_sql or not routing.routed(
                    operation, app_label, self.connection.alias, to_state
                ):
                    continue
                start = len(editor.collected_sql)
                deferred_before = len(editor.deferred_sql)
                raised: list[_Raised] = []
                failed: list[Exception] = []
                with _savepoint(self.connection, operation):
                    try:
                        _collectable(operation).database_backwards(
                            app_label, editor, from_state, to_state
                        )
                    except IrreversibleError:
                        raise  # Django refuses to unapply it: not a collection failure
                    except Exception as exc:
                        _refusal_or_failure(operation, exc, raised=raised, failed=failed)
                if failed:
                    del editor.collected_sql[start:]
                    del editor.deferred_sql[deferred_before:]
                    out.entries.append(f"-- migtools: SQL not collected ({_reason(failed[0])})")
                    raised.append(_not_collected(operation, failed[0]))
                for r in raised:
                    level = self._level(r.rule_id, migration)
                    if level is not Level.OFF:
                        out.findings.append(
                            Finding(
                                r.rule_id,
                                level,
                                f"Unapplying: {r.message}",
                                app_label=app_label,
                                migration_name=migration.name,
                                operation_index=index,
                                operation=operation.describe(),
                            )
                        )
                if failed:
                    continue
                sql = editor.collected_sql[start:]
                out.entries.extend(sql)
                ctx.old_types = oprules.old_types(operation, app_label, from_state, self.connection)
                hits, _parsed = check(sql, ctx)
                for h in hits:
                    if h.rule_id in _NOT_JUDGED_BACKWARDS:
                        continue
                    level = self._level(h.rule_id, migration)
                    if level is Level.OFF:
                        continue
                    out.findings.append(
                        Finding(
                            h.rule_id,
                            level,
                            f"Unapplying: {h.message}",
                            app_label=app_label,
                            migration_name=migration.name,
                            operation_index=index,
                            operation=operation.describe(),
                            sql=h.statement,
                        )
                    )
        _locate(out, path if path is not None else migration_path(migration), self.connection.alias)
        return out


_INDEX_NAME = re.compile(
    r'CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF NOT EXISTS\s+)?"([^"]+)"', re.I
)


def _twins_grouped(findings: list[Finding]) -> list[Finding]:
    """One index and its ``_like`` twin (the varchar_pattern_ops index Django adds for a
    CharField/TextField) are one finding: the twin's is dropped, the index's names both."""

    def index_name(f: Finding) -> str | None:
        match = _INDEX_NAME.search(f.sql or "")
        return match.group(1) if match else None

    plain = {(f.rule_id, index_name(f)) for f in findings if index_name(f)}
    out: list[Finding] = []
    twins: set[tuple[str, str]] = set()
    for f in findings:
        name = index_name(f)
        if name and name.endswith("_like") and (f.rule_id, name[: -len("_like")]) in plain:
            twins.add((f.rule_id, name[: -len("_like")]))
            continue
        out.append(f)
    return [
        replace(f, message=f"{f.message} (and its _like twin)")
        if (f.rule_id, index_name(f)) in twins
        else f
        for f in out
    ]


def _checks_itself(operation: Operation) -> bool:
    """A two-phase deletion: its MOVE_TO_PENDING runs no SQL but refuses in
    ``database_forwards`` what its DELETE phase could not undo (run it, SQL or not)."""
    return getattr(operation, "deletion_action", None) is not None


def _refusal_or_failure(
    operation: Operation, exc: Exception, *, raised: list[_Raised], failed: list[Exception]
) -> bool:
    """A refusal becomes a finding of its rule; any other exception means the operation's
    SQL cannot be collected here (``sql-not-collected``). Always True: nothing propagates."""
    if not _refusal(operation, exc, raised=raised):
        failed.append(exc)
    return True


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or "no message"
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(exc).__name__}: {text}"


def _not_collected(operation: Operation, exc: Exception) -> _Raised:
    return _Raised(
        "sql-not-collected",
        f"The SQL of {operation.describe()!r} cannot be collected without applying the "
        f"migrations before it ({_reason(exc)}); judged by the operation alone. "
        "`migrate` applies it as Django does.",
    )


# Modules whose operations only read the catalog while their SQL is collected (no query that
# can fail): collected without a savepoint.
_TRUSTED_MODULES = ("django.", "migtools.")


def _trusted(operation: Operation) -> bool:
    if isinstance(operation, ops.SeparateDatabaseAndState):
        return all(_trusted(op) for op in operation.database_operations)
    if isinstance(operation, ops.RunPython):
        return True  # never run while collecting (see _collectable)
    return type(operation).__module__.startswith(_TRUSTED_MODULES)


@contextmanager
def _savepoint(connection: BaseDatabaseWrapper, operation: Operation) -> Iterator[None]:
    """On a live connection inside a transaction, collect an operation that may run queries
    of its own under a savepoint, rolled back afterwards: a failed query must not leave the
    transaction aborted (the caller may be ``migrate`` about to apply the plan)."""
    if _trusted(operation) or not connection.in_atomic_block:
        yield
        return
    # Django 6.1 renamed savepoint() to savepoint_create() (the old name warns).
    create = getattr(transaction, "savepoint_create", None) or transaction.savepoint
    sid = create(connection.alias)
    try:
        yield
    finally:
        transaction.savepoint_rollback(sid, connection.alias)


def _collectable(operation: Operation) -> Operation:
    """The operation whose SQL is collected: a ``SeparateDatabaseAndState`` without the
    database operations that cannot be written as SQL (a ``RunPython`` in it would run the
    project's code on the database while collecting)."""
    if not isinstance(operation, ops.SeparateDatabaseAndState):
        return operation
    kept = [op for op in operation.database_operations if op.reduces_to_sql]
    if len(kept) == len(operation.database_operations):
        return operation
    return ops.SeparateDatabaseAndState(
        database_operations=kept, state_operations=operation.state_operations
    )


def _refusal(operation: Operation, exc: Exception, *, raised: list[_Raised]) -> bool:
    """Record what an operation refuses while its SQL is built; False for anything else
    (which propagates)."""
    from django.contrib.postgres.operations import NotInTransactionMixin

    if isinstance(exc, UnsafeMigrationError):
        raised.append(_Raised(exc.rule, exc.message))
        return True
    if isinstance(exc, PendingDeletionError):
        rule_id = "drop-table" if isinstance(operation, ops.DeleteModel) else "drop-column"
        raised.append(_Raised(rule_id, str(exc)))
        return True
    if isinstance(exc, NotSupportedError) and isinstance(operation, NotInTransactionMixin):
        # e.g. AddIndexConcurrently in an atomic migration: Django refuses to build its SQL
        # (`migrate` would fail the same way).
        raised.append(_Raised("concurrently-in-atomic", str(exc)))
        return True
    return False


# -- collected SQL ---------------------------------------------------------------------------


def deferred_texts(editor: Any, statements: Iterable[Any]) -> list[str]:
    """The SQL of deferred statements, as the editor will run them at the migration's end."""
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


# -- where findings are ----------------------------------------------------------------------


def migration_path(migration: Migration) -> str | None:
    module = sys.modules.get(type(migration).__module__)
    file = getattr(module, "__file__", None)
    return str(Path(file).resolve()) if file else None


def _locate(judgement: Judgement, path: str | None, database: str | None = None) -> None:
    """Fill each finding's database alias, path and line (the operation's line in the
    migration file)."""
    if database is not None:
        judgement.findings = [replace(f, database=database) for f in judgement.findings]
    if not judgement.findings or path is None:
        return
    try:
        tree: ast.Module | None = ast.parse(pysource.read(path))
    except (OSError, SyntaxError, ValueError):
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
    for f in judgement.findings:
        line = class_line
        if f.operation_index is not None and f.operation_index < len(op_lines):
            line = op_lines[f.operation_index]
        located.append(replace(f, path=path, line=line))
    judgement.findings = located


def explain(findings: Iterable[Finding]) -> str:
    """What ``migrate`` prints when it refuses: each finding once, on one line with file:line,
    then for each rule once the recipe's first step and the ``--explain`` pointer."""
    lines: list[str] = []
    rules: list[str] = []
    for f in findings:
        line = (
            f"{f.where()}: {f.app_label}.{f.migration_name}{f.on_database()}: {f.level}: "
            f"{' '.join(f.message.split())} [{f.rule_id}]"
        )
        if line not in lines:
            lines.append(line)
        if f.rule_id not in rules:
            rules.append(f.rule_id)
    for rule_id in rules:
        lines.append(f"[{rule_id}] fix: {CATALOGUE[rule_id].first_step}")
        lines.append(f"    {hint(rule_id)}")
    return "\n".join(lines)


def large_tables(connection: BaseDatabaseWrapper) -> set[str]:
    """Table sizes from the database: see ``migtools.rules.operation.large_tables``."""
    return oprules.large_tables(connection)
