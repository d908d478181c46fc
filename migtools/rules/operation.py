"""Operation rules: what the migration's Python objects say that its SQL cannot (defaults that
Django drops, RunPython without reverse, imported models, missing ``is_post_deployment``,
data migrations without a test), plus the glue that runs the SQL rules for one operation.

``check_operation`` is the apply-time entry point (``migtools.rules.catalogue.check_operation`` calls
it); ``check_migration`` adds the rules about a migration as a whole; the verifier
(``migtools.verifier.run``) calls both for every selected migration in one pass over the plan.
"""

from __future__ import annotations

import types
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.migrations import operations as ops

from migtools.rules import data
from migtools.rules.catalogue import CATALOGUE, Finding, Level, Stage, effective_level, stage_of
from migtools.rules.sql import Hit, SqlContext, check, is_data_statement

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration
    from django.db.migrations.operations.base import Operation
    from django.db.migrations.state import ProjectState

    from migtools.project import MigrationTests


# -- facts about operations ----------------------------------------------------------------


def is_delete_phase(operation: Operation) -> bool:
    """SafeRemoveField/SafeDeleteModel with ``DeletionAction.DELETE`` (duck-typed, so this
    module does not depend on migtools.operations)."""
    action = getattr(operation, "deletion_action", None)
    return action is not None and str(getattr(action, "name", action)).upper().endswith("DELETE")


def is_safe_run_sql(operation: Operation) -> bool:
    return any(k.__name__ == "SafeRunSQL" for k in type(operation).__mro__)


def database_operations(operation: Operation) -> Iterator[Operation]:
    """The operations that touch the database: SeparateDatabaseAndState is judged by its
    database_operations, recursively."""
    if isinstance(operation, ops.SeparateDatabaseAndState):
        for inner in operation.database_operations:
            yield from database_operations(inner)
    else:
        yield operation


def operation_stage(migration: Migration | None, operation: Operation) -> Stage:
    if is_delete_phase(operation):
        return Stage.DELETE_PHASE
    return stage_of(migration)


def _code_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_names(const)


def imported_models(func: Any) -> list[str]:
    """Model classes a RunPython function reaches through its module's globals (imported from
    the app's code) instead of the historical registry it receives."""
    code = getattr(func, "__code__", None)
    glb = getattr(func, "__globals__", None)
    if code is None or glb is None:
        return []
    names = set(_code_names(code))
    found: list[str] = []
    for name in sorted(names):
        value = glb.get(name)
        if isinstance(value, type) and issubclass(value, models.Model) and value._meta.apps:
            if not value._meta.abstract:
                found.append(f"{value.__module__}.{value.__qualname__}")
        elif isinstance(value, types.ModuleType):
            for attr in names:
                target = getattr(value, attr, None)
                if (
                    isinstance(target, type)
                    and issubclass(target, models.Model)
                    and not target._meta.abstract
                ):
                    found.append(f"{target.__module__}.{target.__qualname__}")
    return sorted(set(found))


def _model_table(state: ProjectState, app_label: str, model_name: str) -> str | None:
    model_state = state.models.get((app_label, model_name.lower()))
    if model_state is None:
        return None
    table = model_state.options.get("db_table")
    if table:
        return str(table)
    try:
        return str(state.apps.get_model(app_label, model_name)._meta.db_table)
    except LookupError:
        return None


def _old_types(
    operation: Operation,
    app_label: str,
    from_state: ProjectState,
    connection: BaseDatabaseWrapper,
) -> dict[tuple[str, str], str]:
    """(table, column) -> db type before an AlterField, for the safe-widening exemption."""
    if not isinstance(operation, ops.AlterField):
        return {}
    try:
        model = from_state.apps.get_model(app_label, operation.model_name)
        old = model._meta.get_field(operation.name)
    except LookupError:
        return {}
    db_type = old.db_type(connection)
    column = getattr(old, "column", None)
    if not db_type or not column:
        return {}
    return {(model._meta.db_table, column): db_type}


@dataclass(frozen=True)
class OpHit:
    rule_id: str
    message: str
    statement: str | None = None


def operation_hits(
    migration: Migration | None,
    app_label: str,
    operation: Operation,
    from_state: ProjectState,
    new_tables: Collection[str],
) -> list[OpHit]:
    """Rules judged on the operation object itself."""
    hits: list[OpHit] = []
    for op in database_operations(operation):
        if isinstance(op, ops.AddField):
            hits.extend(_add_field(app_label, op, from_state, new_tables))
        elif isinstance(op, ops.RunSQL) and not is_safe_run_sql(op):
            hits.append(
                OpHit("run-sql-not-safe", "RunSQL runs without migtools' checks and timeouts.")
            )
        elif isinstance(op, ops.RunPython):
            if op.reverse_code is None:
                hits.append(
                    OpHit(
                        "run-python-without-reverse",
                        f"RunPython({getattr(op.code, '__name__', 'code')}) has no "
                        "reverse_code: the migration cannot be unapplied.",
                    )
                )
            for func in (op.code, op.reverse_code):
                for dotted in imported_models(func):
                    hits.append(
                        OpHit(
                            "run-python-imports-model",
                            f"{getattr(func, '__name__', 'code')}() uses {dotted} imported "
                            "from the app's code; use apps.get_model() instead.",
                        )
                    )
    return hits


def _add_field(
    app_label: str, op: ops.AddField, from_state: ProjectState, new_tables: Collection[str]
) -> list[OpHit]:
    table = _model_table(from_state, app_label, op.model_name)
    if table is None or table in new_tables:
        return []
    f = op.field
    if f.many_to_many or getattr(f, "db_default", models.NOT_PROVIDED) is not models.NOT_PROVIDED:
        return []
    where = f"{op.model_name}.{op.name}"
    if not f.null and not f.primary_key:
        extra = (
            " Its default= is applied once and then dropped from the database."
            if f.has_default() or not op.preserve_default
            else ""
        )
        return [
            OpHit(
                "not-null-without-db-default",
                f"NOT NULL field {where} is added without db_default: INSERTs from the code "
                f"still running fail.{extra}",
            )
        ]
    if f.has_default():
        return [
            OpHit(
                "default-not-db-default",
                f"{where} has default= but no db_default=: rows inserted by the old code get "
                "NULL instead.",
            )
        ]
    return []


# -- operation + SQL -------------------------------------------------------------------------


@dataclass
class OperationResult:
    findings: list[Finding] = field(default_factory=list)
    has_ddl: bool = False
    has_data: bool = False


def judge_operation(
    migration: Migration,
    operation: Operation,
    from_state: ProjectState,
    connection: BaseDatabaseWrapper,
    sql: list[str],
    ctx: SqlContext,
    *,
    index: int | None,
    levels: dict[str, Level] | None = None,
    refusals: Collection[tuple[str, str]] = (),
) -> OperationResult:
    """Operation rules and SQL rules for one operation; ``ctx.new_tables`` grows with the
    tables its SQL creates. ``refusals`` are what migtools' collecting editor would have refused
    when migrating (rule id, message). Findings carry their effective levels; OFF ones are
    dropped, as are stage-aware rules in a stage that allows them."""
    app_label = migration.app_label
    stage = operation_stage(migration, operation)
    ctx.stage = stage
    ctx.old_types = _old_types(operation, app_label, from_state, connection)
    new_before = frozenset(ctx.new_tables)
    op_hits = operation_hits(migration, app_label, operation, from_state, new_before)
    op_hits += [
        OpHit(r, m) for r, m in data.hits(migration, operation, from_state, ctx.large_tables)
    ]
    sql_hits, parsed = check(sql, ctx)
    result = OperationResult(
        has_data=isinstance(operation, ops.RunPython)
        or any(is_data_statement(s.node) for s in parsed),
        has_ddl=any(s.node is not None and not is_data_statement(s.node) for s in parsed),
    )
    seen: set[str] = set()
    merged: list[Hit | OpHit] = [*sql_hits, *op_hits, *(OpHit(r, m) for r, m in refusals)]
    description = operation.describe()
    for h in merged:
        if h.rule_id in seen and isinstance(h, OpHit):
            continue  # the SQL rule already located this one at its statement
        rule = CATALOGUE[h.rule_id]
        if stage in rule.allowed_in:
            continue
        level = effective_level(h.rule_id, migration, levels=levels)
        if level is Level.OFF:
            continue
        seen.add(h.rule_id)
        result.findings.append(
            Finding(
                h.rule_id,
                level,
                h.message,
                app_label=app_label,
                migration_name=migration.name,
                operation_index=index,
                operation=description,
                sql=h.statement,
                statement_index=h.statement_index if isinstance(h, Hit) else None,
            )
        )
    return result


def check_operation(
    migration: Migration,
    operation: Operation,
    from_state: ProjectState,
    to_state: ProjectState,
    connection: BaseDatabaseWrapper,
    *,
    sql: list[str],
    index: int | None = None,
    new_tables: Collection[str] = (),
    large_tables: Collection[str] = (),
) -> list[Finding]:
    """See ``migtools.rules.catalogue.check_operation``."""
    ctx = SqlContext(
        atomic=bool(migration.atomic),
        new_tables=set(new_tables),
        large_tables=large_tables,
    )
    return judge_operation(
        migration, operation, from_state, connection, sql, ctx, index=index
    ).findings


# -- migration-level rules -------------------------------------------------------------------


def check_migration(
    migration: Migration,
    *,
    managed: bool,
    has_ddl: bool,
    has_data: bool,
    tests: MigrationTests | None,
    levels: dict[str, Level] | None = None,
) -> list[Finding]:
    """Rules about the migration as a whole. ``managed``: the migration's app is managed by
    migtools (only then must it be a CheckedMigration)."""
    hits: list[tuple[str, str]] = []
    checked = getattr(migration, "checked", True) is not False
    if managed and checked:
        from migtools.migration import CheckedMigration

        if not isinstance(migration, CheckedMigration):
            hits.append(
                (
                    "missing-is-post-deployment",
                    f"{type(migration).__module__}.Migration does not subclass "
                    "migtools.CheckedMigration.",
                )
            )
        elif not type(migration).states_post_deployment():
            hits.append(
                (
                    "missing-is-post-deployment",
                    "The migration does not state is_post_deployment = True/False.",
                )
            )
    if has_ddl and has_data:
        hits.append(
            (
                "schema-and-data-mixed",
                "The migration changes the schema and the data in the same migration.",
            )
        )
    node = (migration.app_label, migration.name)
    if tests is not None and managed and checked and has_data and node not in tests.targets:
        hits.append(
            (
                "data-migration-without-test",
                "No TestMigrations test names this migration as migrate_to.",
            )
        )
    if tests is not None:
        for path, line, count in tests.multiple_methods.get(node, ()):
            hits.append(
                (
                    "migration-test-multiple-methods",
                    f"The migration test at {path}:{line} has {count} test_* methods; "
                    "write exactly one.",
                )
            )
    findings = []
    for rule_id, message in hits:
        level = effective_level(rule_id, migration, levels=levels)
        if level is not Level.OFF:
            findings.append(
                Finding(
                    rule_id,
                    level,
                    message,
                    app_label=migration.app_label,
                    migration_name=migration.name,
                )
            )
    return findings


# -- migration tests, read statically --------------------------------------------------------


def large_tables(connection: BaseDatabaseWrapper) -> set[str]:
    """``MIGTOOLS_LARGE_TABLES`` plus the tables whose ``pg_class.reltuples`` exceeds
    ``MIGTOOLS_LARGE_TABLE_ROWS`` in the connection's database (one query)."""
    from migtools import conf as mt_settings

    tables = set(mt_settings.large_tables())
    if connection.vendor != "postgresql":
        return tables
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relkind IN ('r', 'p') "
            "AND c.reltuples > %s AND pg_table_is_visible(c.oid)",
            [mt_settings.large_table_rows()],
        )
        tables.update(row[0] for row in cursor.fetchall())
    return tables
