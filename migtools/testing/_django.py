"""Private Django API used by the testing capability, in one place (GUIDE "Layout").

Django's ``create_test_db`` is the extension point migtools' template creation overrides; these
are the protected helpers Django's own implementation of it uses.
"""

from __future__ import annotations

from typing import Any


def test_db_name(creation: Any) -> str:
    """The test database's name, as Django's creation computes it (``TEST["NAME"]``…)."""
    return str(creation._get_test_db_name())


def display(creation: Any, verbosity: int, name: str) -> str:
    """How Django names an alias and its test database in its log lines."""
    return str(creation._get_database_display_str(verbosity, name))


def store_serialized(connection: Any, contents: str) -> None:
    """Where Django's ``TransactionTestCase(serialized_rollback=True)`` reads the database's
    serialized contents from."""
    connection._test_serialized_contents = contents
