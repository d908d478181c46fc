"""``SafeRunSQL``: ``RunSQL`` whose SQL the rule engine judges and that runs under timeouts.

Same signature as ``RunSQL``. Its SQL is split into statements with pglast and each statement
goes through the schema editor (so the migtools editor runs it under the migration's lock and
statement timeouts, with lock-timeout retries). Nothing is judged here: the rule engine
(``migtools.rules.engine``) collects the statements with a collecting editor and judges them
with the same SQL rules as every other statement, in the verifier, ``sqlmigrate``, the
``migrate`` preflight and the apply-time backstop alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pglast
from django.db.migrations.operations import RunSQL
from pglast.parser import ParseError

if TYPE_CHECKING:
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor


class SafeRunSQL(RunSQL):
    """``RunSQL`` whose SQL is parsed with pglast, checked against the rules and run under the
    migration's lock and statement timeouts (statement by statement)."""

    # Migration files name the public path; the writer serializes by __module__.
    __module__ = "migtools.operations"

    def __init__(
        self,
        sql: Any,
        reverse_sql: Any = None,
        state_operations: Any = None,
        hints: dict[str, Any] | None = None,
        elidable: bool = False,
    ) -> None:
        super().__init__(sql, reverse_sql, state_operations, hints, elidable)

    def _run_sql(self, schema_editor: BaseDatabaseSchemaEditor, sqls: Any) -> None:
        if isinstance(sqls, list | tuple):
            for item in sqls:
                if isinstance(item, list | tuple) and len(item) == 2:
                    schema_editor.execute(item[0], params=item[1])
                else:
                    _run_text(schema_editor, str(item))
        elif sqls != RunSQL.noop:
            _run_text(schema_editor, str(sqls))


def _run_text(schema_editor: BaseDatabaseSchemaEditor, text: str) -> None:
    try:
        statements = pglast.split(text)
    except ParseError:
        # The SQL rules report it (run-sql-not-safe); run as written, PostgreSQL says why.
        statements = (text,)
    for statement in statements:
        schema_editor.execute(statement, params=None)
