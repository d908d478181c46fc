"""Operation rules: what the migration's Python objects say that its SQL cannot (plain RunSQL,
RunPython without reverse, imported models), the rules about a migration as a whole (missing
``is_post_deployment``, data migrations without a test, schema and data mixed), and the facts
about operations the rule engine (``migtools.rules.engine``) needs. Everything the database is
asked to do is judged on its SQL (``migtools.rules.sql``), not here.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.migrations import operations as ops

from migtools.rules import routing
from migtools.rules.catalogue import Finding, Level, Stage, effective_level, stage_of

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


def _function_tree(func: Any) -> ast.AST | None:
    """The AST of a function's source (read from its file, never executed); None for
    lambdas sharing a line with other code it cannot isolate, builtins, or source-less code."""
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return None
    try:
        return ast.parse(source)
    except SyntaxError:
        # A lambda inside a call: its source line is an expression fragment.
        try:
            return ast.parse(f"({source.strip().rstrip(',')})")
        except SyntaxError:
            return None


def _is_models_module(module: str) -> bool:
    """True for an installed app's models module (``shop.models``, ``shop.models.item``)."""
    from django.apps import apps

    parts = module.split(".")
    if "models" not in parts or module.startswith("django."):
        return False
    package = ".".join(parts[: parts.index("models")])
    return any(config.name == package for config in apps.get_app_configs())


def _model_class(value: Any) -> str | None:
    if (
        isinstance(value, type)
        and issubclass(value, models.Model)
        and not value._meta.abstract
        and value._meta.apps is not None
    ):
        return f"{value.__module__}.{value.__qualname__}"
    return None


def imported_models(func: Any) -> list[str]:
    """Model classes a RunPython function takes from the app's code instead of the historical
    registry it receives: names it imports in its body from an app's models module, and
    names it reads that its module imported. Read statically from the function's source
    (its AST) and its module's namespace; the function is never run."""
    tree = _function_tree(func)
    if tree is None:
        return []
    found: set[str] = set()
    names: set[str] = set()
    attributes: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and _is_models_module(node.module):
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(f"{alias.name}.*" for alias in node.names if _is_models_module(alias.name))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            attributes.add(node.attr)
    code = getattr(func, "__code__", None)
    if code is not None:  # a lambda's source line may hold other code: keep its own names
        own = set(_code_names(code))
        names &= own
        attributes &= own
    glb = getattr(func, "__globals__", None) or {}
    for name in sorted(names):
        value = glb.get(name)
        dotted = _model_class(value)
        if dotted is not None:
            found.add(dotted)
        elif isinstance(value, types.ModuleType):
            for attr in attributes:
                dotted = _model_class(getattr(value, attr, None))
                if dotted is not None:
                    found.add(dotted)
    return sorted(found)


def old_types(
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


def operation_hits(operation: Operation) -> list[OpHit]:
    """Rules judged on the operation object itself (what its SQL cannot show)."""
    hits: list[OpHit] = []
    for op in database_operations(operation):
        if isinstance(op, ops.RunSQL | ops.RunPython) and not op.hints and routing.reads_hints():
            hits.append(
                OpHit(
                    "run-without-hints",
                    f"{type(op).__name__} without hints= in a project whose router reads "
                    "hints: it runs on whichever database its app is routed to.",
                )
            )
        if isinstance(op, ops.RunSQL) and not is_safe_run_sql(op):
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
                if func is None:
                    continue
                for dotted in imported_models(func):
                    hits.append(
                        OpHit(
                            "run-python-imports-model",
                            f"{getattr(func, '__name__', 'code')}() uses {dotted} imported "
                            "from the app's code; use apps.get_model() instead.",
                        )
                    )
    return hits


def created_tables(migration: Migration) -> set[str]:
    """The tables the migration's CreateModel operations create."""
    tables: set[str] = set()
    for operation in migration.operations:
        for op in database_operations(operation):
            if isinstance(op, ops.CreateModel):
                table = op.options.get("db_table")
                tables.add(str(table) if table else f"{migration.app_label}_{op.name_lower}")
    return tables


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
