"""A database creation class that clones test databases from content-keyed templates.

:func:`install` gives a connection a creation object whose ``create_test_db`` clones the
test database from the template of :mod:`migtools.testing.template` (built on a miss) instead
of replaying every migration. Django's test runner and pytest-django both create test
databases through ``connection.creation.create_test_db``, so one override serves both: the
pytest plugin installs it before pytest-django's ``django_db_setup``, and
:class:`migtools.testing.runner.TemplateTestRunner` before ``manage.py test`` creates them.

It steps aside (Django's own creation runs) for a non-PostgreSQL database, with
``MIGTOOLS_TEST_TEMPLATES = False``, and when the test database is built without migrations
(``TEST["MIGRATE"] = False``, pytest-django's ``--nomigrations``).

``keepdb`` (``--keepdb``, ``--reuse-db``) keeps an existing test database only when it was
cloned for the current key; a database made for other migrations (or by Django itself) is
rebuilt, never used stale.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from migtools import conf
from migtools.testing import _django
from migtools.testing import template as templates


@dataclass
class Record:
    """What this process did, for the pytest plugin's summary line."""

    cloned: list[templates.Outcome] = field(default_factory=list)
    kept: int = 0


record = Record()


def _graph_parents() -> Any:
    """The current migration graph's parents of ``"app.name"`` (loaded only on a miss that
    has a candidate prefix: importing every migration is what the template saves)."""
    from django.db.migrations.loader import MigrationLoader

    graph = MigrationLoader(None, ignore_no_migrations=True).graph

    def parents(node: str) -> set[str] | None:
        app, _, name = node.partition(".")
        found = graph.node_map.get((app, name))
        if found is None:
            return None
        return {f"{parent.key[0]}.{parent.key[1]}" for parent in found.parents}

    return parents


class TemplateCreationMixin:
    """Mixed in before the connection's own creation class (see :func:`install`)."""

    connection: BaseDatabaseWrapper

    def create_test_db(
        self,
        verbosity: int = 1,
        autoclobber: bool = False,
        serialize: bool = True,
        keepdb: bool = False,
    ) -> str:
        creation: Any = self
        if not uses_templates(self.connection):
            return str(super().create_test_db(verbosity, autoclobber, serialize, keepdb))  # type: ignore[misc]

        from django.core.management import call_command

        alias = self.connection.alias
        test_name = str(_django.test_db_name(creation))
        store = templates.TemplateStore(self.connection)
        try:
            key = templates.compute_key(self.connection)
            existing = store.exists(test_name)
            if keepdb and existing and store.key_of(test_name) == key.digest:
                record.kept += 1
                if verbosity >= 1:
                    creation.log(
                        "Using existing test database for alias "
                        f"{_django.display(creation, verbosity, test_name)} "
                        "(migtools: its migrations are unchanged)..."
                    )
            else:
                if existing and not keepdb and not autoclobber:
                    self._confirm_clobber(test_name)
                test = self.connection.settings_dict.get("TEST") or {}
                outcome = store.ensure(
                    key,
                    lambda database: self._migrate_into(database, verbosity),
                    _graph_parents,
                    template=test.get("TEMPLATE"),
                    encoding=test.get("CHARSET"),
                )
                record.cloned.append(outcome)
                if existing:
                    if keepdb and verbosity >= 1:
                        creation.log(
                            f"migtools: test database '{test_name}' was made for other "
                            "migrations; rebuilding it."
                        )
                    store.drop(test_name)
                store.clone(outcome.template, test_name, key)
                if verbosity >= 1:
                    creation.log(
                        "Creating test database for alias "
                        f"{_django.display(creation, verbosity, test_name)} "
                        f"from template {describe(outcome)}..."
                    )
        finally:
            store.close()

        self.connection.close()
        settings.DATABASES[alias]["NAME"] = test_name
        self.connection.settings_dict["NAME"] = test_name
        if serialize:
            _django.store_serialized(self.connection, creation.serialize_db_to_string())
        call_command("createcachetable", database=alias)
        self.connection.ensure_connection()
        return test_name

    def _confirm_clobber(self, test_name: str) -> None:
        """Django's question before dropping an existing test database (interactive runs)."""
        answer = input(
            "Type 'yes' if you would like to try deleting the test database "
            f"'{test_name}', or 'no' to cancel: "
        )
        if answer != "yes":
            self.connection.creation.log("Tests cancelled.")
            sys.exit(1)

    def _migrate_into(self, database: str, verbosity: int) -> int:
        """Run ``migrate`` (as Django's creation does) on ``database``; the number of
        migrations it applied."""
        from django.core.management import call_command

        alias = self.connection.alias
        saved = (self.connection.settings_dict["NAME"], settings.DATABASES[alias]["NAME"])
        self.connection.close()
        self.connection.settings_dict["NAME"] = settings.DATABASES[alias]["NAME"] = database
        try:
            before = self._applied()
            call_command(
                "migrate",
                verbosity=max(verbosity - 1, 0),
                interactive=False,
                database=alias,
                run_syncdb=True,
            )
            return self._applied() - before
        finally:
            self.connection.close()
            self.connection.settings_dict["NAME"], settings.DATABASES[alias]["NAME"] = saved

    def _applied(self) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('django_migrations') IS NOT NULL")
            row = cursor.fetchone()
            if not row or not row[0]:
                return 0
            cursor.execute("SELECT count(*) FROM django_migrations")
            count = cursor.fetchone()
            return int(count[0]) if count else 0


def describe(outcome: templates.Outcome) -> str:
    if not outcome.built:
        return outcome.template + (" (built by another process)" if outcome.waited else "")
    start = f"a copy of {outcome.base}" if outcome.base else "scratch"
    count = f"{outcome.applied} migration{'' if outcome.applied == 1 else 's'} applied"
    return f"{outcome.template} (built now from {start}: {count})"


def uses_templates(wrapper: BaseDatabaseWrapper) -> bool:
    """Templates apply to this connection now."""
    test = wrapper.settings_dict.get("TEST") or {}
    return (
        wrapper.vendor == "postgresql"
        and test.get("MIGRATE", True) is not False
        and conf.test_templates()
        and type(settings.MIGRATION_MODULES).__name__ != "DisableMigrations"
    )


_classes: dict[type, type] = {}


def install(wrapper: BaseDatabaseWrapper) -> bool:
    """Give ``wrapper`` a template-cloning creation (a subclass of its own creation class);
    False, and nothing changed, where templates do not apply."""
    creation = wrapper.creation
    if isinstance(creation, TemplateCreationMixin):
        return True
    if not uses_templates(wrapper):
        return False
    base = type(creation)
    cls = _classes.get(base)
    if cls is None:
        cls = _classes[base] = type(f"Template{base.__name__}", (TemplateCreationMixin, base), {})
    wrapper.creation = cls(wrapper)
    return True


def install_all() -> list[str]:
    """:func:`install` on every configured database alias; the aliases it applies to."""
    return [alias for alias in connections if install(connections[alias])]
