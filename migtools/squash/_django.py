"""Private Django API the squash capability needs, fenced here (ruff's SLF001 is off for this
module only; see ``pyproject.toml``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.graph import MigrationGraph

Key = tuple[str, str]


def plan(graph: MigrationGraph, nodes: list[Key]) -> list[Key]:
    """Every node ``nodes`` need, in apply order, ``nodes`` included (what
    ``MigrationGraph.make_state`` applies)."""
    found: list[Key] = graph._generate_plan(nodes, True)  # type: ignore[attr-defined]
    return found


def test_database_name(wrapper: BaseDatabaseWrapper) -> str:
    """The name the test runner gives the alias's test database."""
    return str(wrapper.creation._get_test_db_name())  # type: ignore[attr-defined]


@contextmanager
def server_cursor(wrapper: BaseDatabaseWrapper) -> Iterator[Any]:
    """A cursor on the alias's server outside its database (for CREATE/DROP DATABASE)."""
    with wrapper._nodb_cursor() as cursor:
        yield cursor
