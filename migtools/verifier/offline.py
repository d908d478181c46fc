"""Verification without a database (private Django API, fenced here).

``verify_migrations``, ``sqlmigrate`` and makemigrations' findings only need the database for
what it would tell them: the server version, how parameters are quoted, table sizes and the
applied migrations. When the configured database cannot be reached (one connection attempt
with a short timeout), or when no database is configured at all, :func:`reachable_or_offline`
puts an *offline connection* in its place for the alias, for the duration of the run:

- the server version is ``MIGTOOLS_PG_VERSION`` (default: the oldest PostgreSQL the installed
  Django supports, read from Django's backend);
- parameters are merged into statements client-side with psycopg's own adapters (the text is
  the text ``ClientCursor.mogrify`` gives on a live connection; bytea is written as the hex
  literal a server with ``standard_conforming_strings`` receives);
- large tables are ``MIGTOOLS_LARGE_TABLES`` plus those whose recorded rows (the committed
  ``migrations_table_sizes.txt`` of ``manage.py table_sizes --write``, ``migtools.rules.sizes``)
  exceed ``MIGTOOLS_LARGE_TABLE_ROWS``: the online rule on the recorded ``pg_class.reltuples``;
- the applied migrations are unknown: the verifier judges every migration as production meets
  it, with every earlier migration deployed;
- catalog queries (the schema editor's introspection) read an empty database; any statement
  other than a catalog read or transaction control is refused with ``OperationalError``.

The offline connection is a subclass of the configured backend's ``DatabaseWrapper`` (Django's
PostgreSQL backend when no database is configured), so the schema editor and the SQL it
writes are the configured backend's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import OperationalError

from migtools import conf as mt_settings
from migtools import dberrors
from migtools.rules import sizes

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

# Seconds the one connection attempt may take (libpq's minimum is 2).
CONNECT_TIMEOUT = 2

_PLAIN_POSTGRESQL = "django.db.backends.postgresql"
# Statements an offline connection answers (as an empty database would) or ignores.
_ANSWERED = re.compile(r"\s*(SELECT|WITH|SHOW)\b", re.IGNORECASE)
_IGNORED = re.compile(r"\s*(SAVEPOINT|RELEASE|ROLLBACK|BEGIN|COMMIT|SET)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Offline:
    """Why the run is offline and what it assumed, for the one line the command prints."""

    alias: str
    reason: str
    version: int

    def line(self) -> str:
        return (
            f"migtools: verified offline ({self.reason}): PostgreSQL {self.version} assumed, "
            f"{sizes_source(self.alias)}, applied migrations "
            "unknown (each migration judged with every earlier one deployed)."
        )


def large_tables(alias: str) -> set[str]:
    """The large tables of an offline run: ``MIGTOOLS_LARGE_TABLES`` plus the recorded sizes
    of ``alias`` above ``MIGTOOLS_LARGE_TABLE_ROWS`` (the online rule)."""
    tables = set(mt_settings.large_tables())
    record = sizes.recorded(alias)
    if record is not None:
        tables |= record.large(mt_settings.large_table_rows())
    return tables


def _shown(path: object) -> str:
    relative = os.path.relpath(str(path))
    return str(path) if relative.startswith("..") else relative


def sizes_source(alias: str) -> str:
    """Where an offline run's table sizes came from, and how old they are (for the line)."""
    configured = mt_settings.large_tables()
    listed = f"MIGTOOLS_LARGE_TABLES ({', '.join(sorted(configured)) or 'none'})"
    path = sizes.path()
    record = sizes.recorded(alias)
    if record is None:
        missing = "no file" if not path.exists() else f"no [{alias}] section"
        return (
            f"large tables from {listed} only ({_shown(path)}: {missing}; record production's "
            "with `manage.py table_sizes --write`)"
        )
    large = sorted(record.large(mt_settings.large_table_rows()))
    return (
        f"table sizes from {_shown(path)} [{alias}] recorded {record.age()} ago "
        f"({record.recorded:%Y-%m-%d %H:%M} UTC; large: {', '.join(large) or 'none'}) "
        f"and {listed}"
    )


def is_offline(connection: BaseDatabaseWrapper) -> bool:
    return isinstance(connection, _OfflineMixin)


def reason(connection: BaseDatabaseWrapper) -> str | None:
    """None when ``connection`` answers (one attempt, ``CONNECT_TIMEOUT`` seconds), else the
    server's (or the driver's) reason in one line."""
    if connection.vendor != "postgresql":
        dummy = connection.settings_dict.get("ENGINE") == "django.db.backends.dummy"
        return "no database configured" if dummy else None
    if connection.connection is not None:
        return None
    options = connection.settings_dict.setdefault("OPTIONS", {})
    added = "connect_timeout" not in options
    if added:
        options["connect_timeout"] = CONNECT_TIMEOUT
    try:
        connection.ensure_connection()
    except OperationalError as exc:
        return dberrors.unreachable(connection, exc)
    finally:
        if added:
            options.pop("connect_timeout", None)
    return None


#: The server's words from an error (offline refusals print it as their one line).
first_line = dberrors.reason


def default_version(connection: BaseDatabaseWrapper) -> int:
    """The oldest PostgreSQL major version the installed Django supports."""
    minimum = getattr(connection.features, "minimum_database_version", None) or (14,)
    return int(minimum[0])


@contextmanager
def reachable_or_offline(
    alias: str = DEFAULT_DB_ALIAS,
) -> Iterator[tuple[BaseDatabaseWrapper, Offline | None]]:
    """The connection for ``alias``: the configured one when its server answers, else an
    offline connection installed under ``alias`` until the block ends (with why)."""
    try:
        connection = connections[alias]
    except Exception:
        raise dberrors.unknown_alias(alias) from None
    why = reason(connection)
    if why is None:
        yield connection, None
        return
    offline = _offline_connection(connection)
    info = Offline(alias, why, int(vars(offline)["pg_version"]) // 10000)
    connections[alias] = offline
    try:
        yield offline, info
    finally:
        connections[alias] = connection


def _offline_connection(connection: BaseDatabaseWrapper) -> BaseDatabaseWrapper:
    base: type[BaseDatabaseWrapper]
    settings = dict(connection.settings_dict)
    if connection.vendor == "postgresql":
        base = type(connection)
    else:  # no DATABASES: Django's PostgreSQL backend, with Django's defaults
        from django.db.backends.postgresql.base import DatabaseWrapper

        base = DatabaseWrapper
        settings = {
            "ENGINE": _PLAIN_POSTGRESQL,
            "NAME": "",
            "USER": "",
            "PASSWORD": "",
            "HOST": "",
            "PORT": "",
            "OPTIONS": {},
            "ATOMIC_REQUESTS": False,
            "AUTOCOMMIT": True,
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": False,
            "TIME_ZONE": None,
            "TEST": {},
            **{k: v for k, v in settings.items() if k not in ("ENGINE",)},
        }
    cls = type(f"Offline{base.__name__}", (_OfflineMixin, base), {})
    wrapper: BaseDatabaseWrapper = cls(settings, connection.alias)
    return wrapper


# -- the offline connection -------------------------------------------------------------


class _OfflineMixin:
    """Overrides of ``DatabaseWrapper`` for a connection that never connects."""

    connection: Any
    autocommit: bool
    alias: str
    settings_dict: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.autocommit = True
        ops = self.ops  # type: ignore[attr-defined]
        vars(ops)["compose_sql"] = _compose_sql
        configured = mt_settings.pg_version()
        version = configured if configured is not None else default_version(self)  # type: ignore[arg-type]
        vars(self)["pg_version"] = version * 10000

    def ensure_connection(self) -> None:
        raise OperationalError(
            f"migtools is verifying offline: database {self.alias!r} is not connected."
        )

    def get_autocommit(self) -> bool:
        return self.autocommit

    def set_autocommit(
        self, autocommit: bool, force_begin_transaction_with_broken_autocommit: bool = False
    ) -> None:
        self.autocommit = autocommit

    def cursor(self) -> _EmptyDatabaseCursor:
        return _EmptyDatabaseCursor(self.alias)

    def chunked_cursor(self) -> _EmptyDatabaseCursor:
        return _EmptyDatabaseCursor(self.alias)

    def close(self) -> None:
        return None


class _EmptyDatabaseCursor:
    """A cursor of the offline connection: catalog reads find nothing (an empty database),
    transaction control is a no-op, anything else is refused."""

    description = None
    rowcount = 0

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def __enter__(self) -> _EmptyDatabaseCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(())

    def execute(self, sql: str, params: Any = None) -> None:
        if _ANSWERED.match(sql) or _IGNORED.match(sql):
            return
        raise OperationalError(
            f"migtools is verifying offline: cannot run {sql.split(None, 1)[0]!r} on "
            f"database {self.alias!r}."
        )

    def executemany(self, sql: str, params: Any) -> None:
        self.execute(sql)

    def fetchone(self) -> None:
        return None

    def fetchmany(self, size: int = 0) -> list[tuple[Any, ...]]:
        return []

    def fetchall(self) -> list[tuple[Any, ...]]:
        return []

    def close(self) -> None:
        return None


# -- client-side quoting ------------------------------------------------------------------


def _compose_sql(sql: str, params: Any) -> str:
    """``sql`` with ``params`` merged in, as psycopg's ``ClientCursor.mogrify`` merges them on
    a live connection, without one."""
    from psycopg._queries import PostgresClientQuery
    from psycopg.adapt import Transformer

    transformer = Transformer(_adapters())
    query = PostgresClientQuery(transformer)
    query.convert(sql, params)
    assert query.query is not None
    return bytes(query.query).decode(transformer.encoding)


_ADAPTERS: list[Any] = []


def _adapters() -> Any:
    """Django's psycopg adapters (its Range dumper included) plus a bytea dumper writing the
    hex literal a live connection writes (psycopg's offline bytea escaping differs)."""
    if _ADAPTERS:
        return _ADAPTERS[0]
    from django.conf import settings
    from django.db.backends.postgresql.psycopg_any import get_adapters_template
    from psycopg import Binary, adapt
    from psycopg.types.string import BytesDumper

    class HexBytesDumper(BytesDumper):
        def quote(self, obj: Any) -> bytes:
            data = obj.obj if isinstance(obj, Binary) else obj  # Django's BinaryField: Binary
            return b"'\\x" + bytes(data).hex().encode() + b"'"

    adapters = adapt.AdaptersMap(get_adapters_template(settings.USE_TZ, None))
    for kind in (bytes, bytearray, memoryview, Binary):
        adapters.register_dumper(kind, HexBytesDumper)
    _ADAPTERS.append(adapters)
    return adapters
