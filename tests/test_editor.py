"""The migtools schema editor is Django's where it is not checking: an editor that runs no
statement issues no query, no connection-wide feature flag changes, and an unchecked migration
runs Django's SQL byte for byte plus the lock timeout, set once for the migration.

(``tests/django_suite/run.py`` checks the same against Django's own test suite.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, migrations, models
from django.db.backends.postgresql.schema import DatabaseSchemaEditor as DjangoEditor
from django.db.migrations.state import ProjectState
from django.test.utils import CaptureQueriesContext, override_settings

from migtools import conf as mt_settings
from migtools.safety import deploy
from migtools.safety.editor import DatabaseSchemaEditor


class NoMigrations:
    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return False


@pytest.fixture
def db_autocommit(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def thing(db_autocommit: None) -> Iterator[tuple[str, ProjectState]]:
    """An app label and the state with its model ``Thing(name varchar(10) NOT NULL)``, whose
    table exists (dropped afterwards)."""
    label = f"ed{uuid.uuid4().hex[:8]}"
    state = ProjectState()
    create = migrations.CreateModel(
        "Thing",
        [("id", models.AutoField(primary_key=True)), ("name", models.CharField(max_length=10))],
    )
    after = state.clone()
    create.state_forwards(label, after)
    with DjangoEditor(connection) as editor:
        create.database_forwards(label, editor, state, after)
    try:
        yield label, after
    finally:
        with DjangoEditor(connection) as editor:
            create.database_backwards(label, editor, after, state)


def _migration(label: str, *operations: Any) -> migrations.Migration:
    migration = migrations.Migration("0002_change", label)
    migration.operations = list(operations)
    return migration


def _sql(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries]


@pytest.mark.parametrize("atomic", [True, False])
def test_an_editor_that_runs_nothing_issues_no_query(db_autocommit: None, atomic: bool) -> None:
    """Nothing beyond Django's own editor's transaction control, under ``migrate`` too."""
    with (
        deploy.applying(connection, []),
        CaptureQueriesContext(connection) as queries,
        DatabaseSchemaEditor(connection, atomic=atomic),
    ):
        pass
    assert _sql(queries) == (["BEGIN", "COMMIT"] if atomic else [])


def test_an_operation_the_router_blocks_issues_no_query_even_under_migrate(
    db_autocommit: None,
) -> None:
    label = f"ed{uuid.uuid4().hex[:8]}"
    create = migrations.CreateModel("Blocked", [("id", models.AutoField(primary_key=True))])
    state = ProjectState()
    after = state.clone()
    create.state_forwards(label, after)
    with (
        override_settings(DATABASE_ROUTERS=[f"{__name__}.NoMigrations"]),
        deploy.applying(connection, []),
        CaptureQueriesContext(connection) as queries,
        DatabaseSchemaEditor(connection, atomic=False) as editor,
    ):
        _migration(label, create).apply(state, editor)
    assert _sql(queries) == []


def test_a_bare_editor_runs_django_sql_and_no_timeout(thing: tuple[str, ProjectState]) -> None:
    """Outside a migration (e.g. a test's ``schema_editor()``) the editor runs what Django's
    runs, nothing more."""
    table = f"{thing[0]}_thing"
    with (
        CaptureQueriesContext(connection) as queries,
        DatabaseSchemaEditor(connection, atomic=False) as editor,
    ):
        editor.execute(f'CREATE INDEX "{table}_x" ON "{table}" ("name")')
    assert _sql(queries) == [f'CREATE INDEX "{table}_x" ON "{table}" ("name")']


def test_combined_alters_flag_is_never_changed(thing: tuple[str, ProjectState]) -> None:
    label, state = thing
    assert "supports_combined_alters" not in vars(connection.features)
    alter = migrations.AlterField("Thing", "name", models.CharField(max_length=20, null=True))
    after = state.clone()
    alter.state_forwards(label, after)
    with DatabaseSchemaEditor(connection) as editor:
        assert connection.features.supports_combined_alters is True
        alter.database_forwards(label, editor, state, after)
    assert connection.features.supports_combined_alters is True
    assert "supports_combined_alters" not in vars(connection.features)


@pytest.mark.parametrize("atomic", [True, False])
def test_unchecked_alter_field_is_djangos_sql_plus_the_lock_timeout_once(
    thing: tuple[str, ProjectState], atomic: bool
) -> None:
    label, state = thing
    alter = migrations.AlterField(
        "Thing", "name", models.CharField(max_length=20, null=True, db_default="x")
    )

    def run(editor_class: type[Any], backwards: bool = False) -> list[str]:
        migration = _migration(label, alter)
        with (
            CaptureQueriesContext(connection) as queries,
            editor_class(connection, atomic=atomic) as editor,
        ):
            if backwards:
                migration.unapply(state.clone(), editor)
            else:
                migration.apply(state.clone(), editor)
        return _sql(queries)

    django = run(DjangoEditor)
    run(DjangoEditor, backwards=True)
    with deploy.applying(connection, []):  # as `migrate` applies a plan
        ours = run(DatabaseSchemaEditor)
    run(DjangoEditor, backwards=True)

    alters = [sql for sql in django if sql.startswith("ALTER TABLE")]
    assert len(alters) == 1, django  # one combined ALTER TABLE
    lock_timeout = mt_settings.lock_timeout()
    # Django's statements byte for byte, the lock timeout set right before the first one.
    if atomic:  # SET LOCAL in the migration's transaction, which its end undoes
        assert django[0] == "BEGIN" and django[-1] == "COMMIT"
        assert ours == [
            "BEGIN",
            f"SELECT set_config('lock_timeout', '{lock_timeout}', true)",
            *django[1:-1],
            "COMMIT",
        ]
    else:  # the session's values read as it is set, restored at the end
        assert ours == [
            "SELECT current_setting('lock_timeout'), current_setting('statement_timeout'), "
            f"set_config('lock_timeout', '{lock_timeout}', false)",
            *django,
            "SELECT set_config('lock_timeout', '0', false), "
            "set_config('statement_timeout', '0', false)",
        ]
