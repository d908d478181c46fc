"""A custom database operation that says it is reversible and refuses to run backwards."""

from __future__ import annotations

from typing import Any

from django.db.migrations.operations.base import Operation


class StampComment(Operation):
    reversible = True  # the default, and wrong: database_backwards refuses

    def __init__(self, table: str, comment: str) -> None:
        self.table = table
        self.comment = comment

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (type(self).__qualname__, [self.table, self.comment], {})

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        table = schema_editor.quote_name(self.table)
        schema_editor.execute(f"COMMENT ON TABLE {table} IS %s", [self.comment])

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        raise NotImplementedError("StampComment cannot be unapplied")

    def describe(self) -> str:
        return f"Comment on {self.table}"
