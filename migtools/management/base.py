"""What every migtools command shares: migtools errors become ``CommandError`` with their
exit code, in one place."""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import InterfaceError, OperationalError
from django.utils.connection import ConnectionDoesNotExist

from migtools import dberrors
from migtools.errors import MigtoolsError, NoMigrationsError, UnknownAppError
from migtools.graph import checks as graph_checks
from migtools.graph import diagnosis


def display_path(path: Path | str) -> str:
    """``path`` relative to the current directory when below it (as Django prints paths)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def check_database_alias(alias: object) -> None:
    """``--database`` must name an alias of ``DATABASES`` (exit 2 otherwise)."""
    if isinstance(alias, str) and alias not in connections.databases:
        raise dberrors.unknown_alias(alias)


def check_app_label(app_label: str, migrated_apps: Collection[str] | None = None) -> None:
    """An app label named on the command line: unknown, or without migrations, is bad usage
    (exit 2) in every command. ``migrated_apps``: the loader's, when there is one (else the
    app's migrations package is looked for on disk)."""
    from django.apps import apps

    try:
        apps.get_app_config(app_label)
    except LookupError:
        raise UnknownAppError(app_label) from None
    if migrated_apps is None:
        from migtools.graph import disk

        migrated = disk.locate(app_label)[1] is not None
    else:
        migrated = app_label in migrated_apps
    if not migrated:
        raise NoMigrationsError(app_label)


MERGE_ADVICE = "makemigrations --merge"
UPDATE_ADVICE = (
    "Run 'python manage.py update_migration' to renumber your branch's migrations after main's."
)


class MigtoolsCommandMixin(BaseCommand):
    """Maps, in one place, migtools errors to their exit code (``migtools.errors``), an
    unknown ``--database`` alias to exit 2 and an unreachable database to one line, exit 1."""

    def execute(self, *args: Any, **options: Any) -> str | None:
        alias = options.get("database") or DEFAULT_DB_ALIAS
        try:
            if "database" in options:
                check_database_alias(options["database"])
            with graph_checks.graph_errors_reported_by_command():
                output = super().execute(*args, **options)
            self.finished(**options)
            return output
        except MigtoolsError as exc:
            raise CommandError(str(exc), returncode=exc.returncode) from exc
        except CommandError as exc:
            # Several leaves: Django's migrate and makemigrations advise a merge migration;
            # the cure migtools gives is the renamer.
            text = str(exc)
            if MERGE_ADVICE not in text:
                raise
            first = text.split("\n", 1)[0]
            raise CommandError(f"{first}\n{UPDATE_ADVICE}", returncode=exc.returncode) from None
        except ConnectionDoesNotExist as exc:
            unknown = dberrors.unknown_alias(str(alias))
            raise CommandError(str(unknown), returncode=unknown.returncode) from exc
        except (OperationalError, InterfaceError) as exc:
            if not dberrors.is_unavailable(exc):
                raise
            error = dberrors.unavailable(str(alias), exc)
            raise CommandError(str(error), returncode=error.returncode) from exc
        except Exception as exc:
            # A migration file Django's loader refuses: one line with file:line, exit 1.
            refused = diagnosis.diagnose(exc)
            if refused is None:
                raise
            raise CommandError(str(refused), returncode=refused.returncode) from exc

    def finished(self, **options: Any) -> None:
        """Called once the command's output is written: raise a migtools error here to exit
        with its code after the output (e.g. ``sqlmigrate --check``)."""

    def warn_all(self, warnings: list[str]) -> None:
        for warning in warnings:
            self.stderr.write(self.style.WARNING(f"migtools: {warning}"))

    def refresh_lockfile(self) -> None:
        """Rewrite the lockfile from the graph on disk; a conflict leaves it as it is."""
        from migtools import project
        from migtools.errors import ConflictError
        from migtools.graph import disk as graph
        from migtools.graph import lockfile

        disk = graph.load()
        self.warn_all(disk.warnings)
        try:
            entries = lockfile.expected(disk)
        except ConflictError as exc:
            self.stderr.write(self.style.WARNING(f"Lockfile not updated. {exc}"))
            return
        path = project.lockfile_path()
        if lockfile.write(path, entries):
            self.stdout.write(f"Updated {display_path(path)}")
