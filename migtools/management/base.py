"""What every migtools command shares: migtools errors become ``CommandError`` with their
exit code, in one place."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import InterfaceError, OperationalError
from django.utils.connection import ConnectionDoesNotExist

from migtools.errors import DatabaseUnavailableError, MigtoolsError, UnknownDatabaseError
from migtools.graph import checks as graph_checks
from migtools.graph import diagnosis

# SQLSTATE classes that mean "no usable connection": 08 connection exception, 28 invalid
# authorization, 3D invalid catalog name (no such database), 57 operator intervention
# (the server shut down or is starting) except 57014 query_canceled (a statement timeout).
_UNAVAILABLE_CLASSES = ("08", "28", "3D", "57")
_NOT_UNAVAILABLE = ("57014",)


def display_path(path: Path | str) -> str:
    """``path`` relative to the current directory when below it (as Django prints paths)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (psycopg 3 or 2, wrapped by Django or not)."""
    for candidate in (exc, exc.__cause__):
        if candidate is None:
            continue
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if code:
            return str(code)
    return None


def is_unavailable(exc: BaseException) -> bool:
    """A connection that could not be made, was refused, or was lost (not a query error)."""
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    code = sqlstate(exc)
    if code is None:
        return True  # refused before the server answered, or a closed connection
    return code[:2] in _UNAVAILABLE_CLASSES and code not in _NOT_UNAVAILABLE


def unavailable(alias: str, exc: BaseException) -> DatabaseUnavailableError:
    """One line: the alias, where it points, the server's (or driver's) own reason."""
    settings_dict = connections.databases.get(alias, {})
    host = settings_dict.get("HOST") or "localhost (socket)"
    port = settings_dict.get("PORT") or "default port"
    name = settings_dict.get("NAME") or "?"
    reason = " ".join(str(exc.__cause__ or exc).split()).rstrip(". ") or type(exc).__name__
    end = "" if reason.endswith(("?", "!")) else "."
    return DatabaseUnavailableError(
        f"Database '{alias}' (name {name}, host {host}, port {port}) is unavailable: {reason}{end} "
        f"Check that the server is running and DATABASES['{alias}'] is right, then re-run."
    )


def check_database_alias(alias: object) -> None:
    """``--database`` must name an alias of ``DATABASES`` (exit 2 otherwise)."""
    if isinstance(alias, str) and alias not in connections.databases:
        raise UnknownDatabaseError(alias, sorted(connections.databases))


class MigtoolsCommandMixin(BaseCommand):
    """Maps, in one place, migtools errors to their exit code (``migtools.errors``), an
    unknown ``--database`` alias to exit 2 and an unreachable database to one line, exit 1."""

    def execute(self, *args: Any, **options: Any) -> str | None:
        alias = options.get("database") or DEFAULT_DB_ALIAS
        try:
            if "database" in options:
                check_database_alias(options["database"])
            with graph_checks.graph_errors_reported_by_command():
                return super().execute(*args, **options)
        except MigtoolsError as exc:
            raise CommandError(str(exc), returncode=exc.returncode) from exc
        except ConnectionDoesNotExist as exc:
            unknown = UnknownDatabaseError(str(alias), sorted(connections.databases))
            raise CommandError(str(unknown), returncode=unknown.returncode) from exc
        except (OperationalError, InterfaceError) as exc:
            if not is_unavailable(exc):
                raise
            error = unavailable(str(alias), exc)
            raise CommandError(str(error), returncode=error.returncode) from exc
        except Exception as exc:
            # A migration file Django's loader refuses: one line with file:line, exit 1.
            refused = diagnosis.diagnose(exc)
            if refused is None:
                raise
            raise CommandError(str(refused), returncode=refused.returncode) from exc

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
