"""What a database error means, in one place: the SQLSTATE of an error (never its message
text), whether a connection is unusable, and the one wording of "unknown database alias" and
"database unreachable" every command prints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import connections
from django.db.utils import InterfaceError, OperationalError

from migtools.errors import DatabaseUnavailableError, UnknownDatabaseError

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

# SQLSTATE classes that mean "no usable connection": 08 connection exception, 28 invalid
# authorization, 3D invalid catalog name (no such database), 57 operator intervention
# (the server shut down or is starting) except 57014 query_canceled (a statement timeout).
_UNAVAILABLE_CLASSES = ("08", "28", "3D", "57")
_NOT_UNAVAILABLE = ("57014",)
_DUMMY = "django.db.backends.dummy"


def sqlstate(exc: BaseException) -> str | None:
    """The first SQLSTATE found on ``exc`` or the exceptions it was raised from (Django wraps
    the driver's error; psycopg 3 calls it ``sqlstate``, psycopg 2 ``pgcode``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if code:
            return str(code)
        current = current.__cause__ or current.__context__
    return None


def is_unavailable(exc: BaseException) -> bool:
    """A connection that could not be made, was refused, or was lost (not a query error)."""
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    code = sqlstate(exc)
    if code is None:
        return True  # refused before the server answered, or a closed connection
    return code[:2] in _UNAVAILABLE_CLASSES and code not in _NOT_UNAVAILABLE


def unknown_alias(
    alias: str, way_out: str = "give one of them with --database"
) -> UnknownDatabaseError:
    """``alias`` is not in ``DATABASES`` (exit 2), with the aliases it does define."""
    return UnknownDatabaseError(alias, sorted(connections.settings), way_out)


def where(alias_or_connection: str | BaseDatabaseWrapper) -> str:
    """``database 'default' (name shop, host 127.0.0.1, port 5432)``."""
    if isinstance(alias_or_connection, str):
        alias = alias_or_connection
        settings = connections.settings.get(alias, {})
    else:
        alias = alias_or_connection.alias
        settings = alias_or_connection.settings_dict
    name = settings.get("NAME") or "?"
    host = settings.get("HOST") or "local socket"
    port = settings.get("PORT") or "5432"
    return f"database '{alias}' (name {name}, host {host}, port {port})"


def reason(exc: BaseException) -> str:
    """The server's (or the driver's) own words, on one line (psycopg's repetition of the
    target dropped)."""
    text = str(exc).strip() or type(exc).__name__
    line = " ".join(text.splitlines()[0].split())
    marker = line.rfind("failed: ")
    return (line[marker + len("failed: ") :] if marker >= 0 else line).rstrip(". ")


def unreachable(alias_or_connection: str | BaseDatabaseWrapper, exc: BaseException) -> str:
    """``database 'default' (name …, host …, port …) is unreachable: <reason>`` (or, with
    Django's dummy backend, that no database is configured)."""
    if isinstance(alias_or_connection, str):
        alias = alias_or_connection
        engine = connections.settings.get(alias, {}).get("ENGINE")
    else:
        alias = alias_or_connection.alias
        engine = alias_or_connection.settings_dict.get("ENGINE")
    if engine == _DUMMY:
        return f"database '{alias}' is not configured (DATABASES is empty)"
    return f"{where(alias_or_connection)} is unreachable: {reason(exc)}"


def unavailable(alias: str, exc: BaseException) -> DatabaseUnavailableError:
    """The one-line error (exit 1) for a database that cannot be used: where, why, what next."""
    text = unreachable(alias, exc)
    return DatabaseUnavailableError(
        f"{text[0].upper()}{text[1:]}. Check that the server is running and "
        f"DATABASES['{alias}'] is right, then re-run."
    )
