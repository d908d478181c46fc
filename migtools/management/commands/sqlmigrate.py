"""``sqlmigrate``: Django's, with migtools' findings as ``-- migtools: <id>: <message>`` comment
lines before the statement they concern; ``--check`` exits 1 on an error-level finding."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.management.base import CommandParser
from django.core.management.commands import sqlmigrate
from django.db.migrations.loader import AmbiguityError
from django.db.utils import OperationalError

from migtools.errors import DatabaseUnavailableError, FindingsError, UnknownMigrationError
from migtools.management.base import MigtoolsCommandMixin, check_app_label

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper


class Command(MigtoolsCommandMixin, sqlmigrate.Command):
    help = (
        "Prints the SQL statements for the named migration, with migtools' findings as "
        "'-- migtools:' comments before the statements they concern."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--check",
            action="store_true",
            help="Exit with status 1 when an error-level finding is reported.",
        )

    _errors = 0

    def finished(self, **options: Any) -> None:
        if options.get("check") and self._errors:
            raise FindingsError(
                f"{self._errors} error-level migtools finding(s); see the "
                "'-- migtools:' lines above."
            )

    def handle(self, *args: Any, **options: Any) -> str:
        from migtools.verifier import offline

        app_label, name = options["app_label"], options["migration_name"]
        check_app_label(app_label)
        # With no reachable database, an offline connection stands in for the alias (Django's
        # own backwards path included) and one line on stderr says so.
        with offline.reachable_or_offline(options["database"]) as (connection, offline_run):
            if offline_run is not None:
                self.stderr.write(offline_run.line())
            try:
                if options["backwards"]:
                    return str(super().handle(*args, **options))
                return self._annotated(connection, app_label, name, options)
            except OperationalError as exc:
                raise DatabaseUnavailableError(offline.first_line(exc)) from None

    def _annotated(
        self, connection: BaseDatabaseWrapper, app_label: str, name: str, options: Any
    ) -> str:
        from migtools.verifier.run import Verifier
        from migtools.verifier.select import load

        loader = load(connection, replace=False)
        check_app_label(app_label, loader.migrated_apps)
        try:
            migration = loader.get_migration_by_prefix(app_label, name)
        except AmbiguityError:
            raise UnknownMigrationError(
                f"More than one migration matches '{name}' in app '{app_label}'. Please be "
                "more specific."
            ) from None
        except KeyError:
            raise UnknownMigrationError(
                f"Cannot find a migration matching '{name}' from app '{app_label}'. Is it in "
                "INSTALLED_APPS?"
            ) from None
        self.output_transaction = migration.atomic and connection.features.can_rollback_ddl
        report = Verifier(connection, loader).run({(app_label, migration.name)})
        migration_report = report.migrations[0]
        self._errors = report.errors
        if not migration_report.entries and options["verbosity"] >= 1:
            self.stderr.write("No operations found.")
        return "\n".join(migration_report.annotated(hints=True))
