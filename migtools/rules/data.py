"""Data rules: big data migrations and where ``RunBackfill`` belongs.

- ``run-python-on-large-table``: a ``RunPython`` whose function names a model (``apps.get_model
  ("app", "Model")``) whose table is large (``MIGTOOLS_LARGE_TABLES`` or above
  ``MIGTOOLS_LARGE_TABLE_ROWS``) and calls a writing method (``update``, ``save``, ...). Read
  from the function's code objects, statically: nothing runs.
- ``backfill-not-post-deployment`` / ``backfill-in-atomic-migration``: ``RunBackfill`` (duck-typed
  by class name, so rules/ does not depend on the backfill capability).

``operation.judge_operation`` calls ``hits`` once per operation.
"""

from __future__ import annotations

import types
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any

from django.db.migrations import operations as ops

if TYPE_CHECKING:
    from django.db.migrations.migration import Migration
    from django.db.migrations.operations.base import Operation
    from django.db.migrations.state import ProjectState

_WRITES = frozenset(
    {
        "update",
        "save",
        "bulk_update",
        "bulk_create",
        "create",
        "delete",
        "update_or_create",
        "get_or_create",
    }
)


def is_backfill(operation: Operation) -> bool:
    return any(k.__name__ == "RunBackfill" for k in type(operation).__mro__)


def _code(func: Any) -> Iterator[types.CodeType]:
    code = getattr(func, "__code__", None)
    stack = [code] if isinstance(code, types.CodeType) else []
    while stack:
        c = stack.pop()
        yield c
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))


def written_tables(func: Any, from_state: ProjectState) -> list[str]:
    """Tables of the models ``func`` names through the historical registry, when it also calls
    a writing method (a static reading: strings and attribute names of its code)."""
    strings: set[str] = set()
    names: set[str] = set()
    for code in _code(func):
        strings.update(c.lower() for c in code.co_consts if isinstance(c, str))
        names.update(code.co_names)
    if not names & _WRITES:
        return []
    tables = []
    for (app, model), model_state in from_state.models.items():
        if f"{app}.{model}" in strings or (app in strings and model in strings):
            table = model_state.options.get("db_table") or f"{app}_{model}"
            tables.append(str(table))
    return sorted(set(tables))


def _flatten(operation: Operation) -> Iterator[Operation]:
    if isinstance(operation, ops.SeparateDatabaseAndState):
        for inner in operation.database_operations:
            yield from _flatten(inner)
    else:
        yield operation


def hits(
    migration: Migration | None,
    operation: Operation,
    from_state: ProjectState,
    large_tables: Collection[str],
) -> list[tuple[str, str]]:
    """``(rule_id, message)`` for the data rules this operation breaks."""
    out: list[tuple[str, str]] = []
    for op in _flatten(operation):
        if is_backfill(op):
            model = getattr(op, "model", "?")
            if migration is not None and migration.atomic:
                out.append(
                    (
                        "backfill-in-atomic-migration",
                        f"RunBackfill({model}) in an atomic migration: set `atomic = False` "
                        "(each batch commits on its own).",
                    )
                )
            out.append(
                (
                    "backfill-not-post-deployment",
                    f"RunBackfill({model}) in a migration that is not is_post_deployment.",
                )
            )
        elif isinstance(op, ops.RunPython):
            name = getattr(op.code, "__name__", "code")
            for table in written_tables(op.code, from_state):
                if table in large_tables:
                    out.append(
                        (
                            "run-python-on-large-table",
                            f"RunPython({name}) writes to large table {table!r} in one "
                            "transaction; use migtools.operations.RunBackfill.",
                        )
                    )
    return out
