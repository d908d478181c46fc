"""PostgreSQL template databases: snapshots of a test database at a migration target.

A migration test needs the database as it was at ``migrate_from``. Walking a database back
there costs time proportional to the migrations after it; copying a database that is already
there (``CREATE DATABASE … TEMPLATE``) costs the same wherever the migration sits in history.
This module owns those copies:

- ``SnapshotStore`` — one per test database (alias + name). Snapshot names start with a prefix
  derived from the test database's name, so pytest-xdist workers (``test_db_gw0``, …) and other
  test databases on the same server never share or drop each other's snapshots.
- A snapshot name carries the migration graph's fingerprint: an edited, added or removed
  migration file makes new snapshots, and the stale ones are dropped on first use.
- The test database itself is only ever *read* (as a template): tests run on a throwaway copy,
  so head — with whatever data migrations seeded — is never touched.

No printing, no Django test-framework imports: ``migtools.testing`` and the pytest plugin
compose this.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import django
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.loader import MigrationLoader

from migtools.dberrors import sqlstate
from migtools.errors import SnapshotError

PREFIX = "mt_"
_RUN = "run"


def graph_fingerprint(loader: MigrationLoader) -> str:
    """A hash of every migration file on disk (names and contents) and the Django version.

    Files are read, not imported again: reading 1,000 small files takes milliseconds.
    """
    digest = hashlib.sha256(repr(django.VERSION).encode())
    for (app_label, name), migration in sorted(loader.disk_migrations.items()):
        digest.update(f"\0{app_label}\0{name}\0".encode())
        module = sys.modules.get(type(migration).__module__)
        path = getattr(module, "__file__", None)
        if path:
            try:
                digest.update(Path(path).read_bytes())
            except OSError:
                digest.update(b"?")
    return digest.hexdigest()


def _short(text: str, length: int = 10) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:length]


@dataclass
class Stats:
    """What this process did with snapshots (the pytest plugin reports it)."""

    built: list[str] = field(default_factory=list)
    forward: list[str] = field(default_factory=list)  # built forwards (walk back impossible)
    reused: list[str] = field(default_factory=list)
    dropped: int = 0


class SnapshotStore:
    """Template databases for one test database, managed over a maintenance connection."""

    def __init__(self, wrapper: BaseDatabaseWrapper) -> None:
        if wrapper.vendor != "postgresql":
            raise SnapshotError(
                f"Database alias '{wrapper.alias}' uses the {wrapper.vendor} backend; migtools' "
                "migration tests copy databases with PostgreSQL's CREATE DATABASE … TEMPLATE "
                "and need PostgreSQL."
            )
        self.alias = wrapper.alias
        self.settings_dict: dict[str, Any] = dict(wrapper.settings_dict)
        self.db_name = str(self.settings_dict["NAME"])
        self.prefix = f"{PREFIX}{_short(self.db_name, 8)}_"
        self._wrapper_class = type(wrapper)
        self._admin: Any = None
        self._known: set[str] = set()
        self._warm: dict[str, BaseDatabaseWrapper] = {}
        self._pruned_for: str | None = None
        self.stats = Stats()

    # -- maintenance connection -------------------------------------------------------------

    def _connect_admin(self) -> Any:
        if self._admin is None or self._admin.closed:
            maintenance = self._wrapper_class(
                {**self.settings_dict, "NAME": "postgres"}, alias="__migtools_admin__"
            )
            params = maintenance.get_connection_params()
            driver: Any = maintenance.Database  # type: ignore[attr-defined]
            self._admin = driver.connect(**params)
            self._admin.autocommit = True
        return self._admin

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        admin = self._connect_admin()
        with admin.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []

    def close(self) -> None:
        for wrapper in self._warm.values():
            wrapper.close()
        self._warm.clear()
        if self._admin is not None and not self._admin.closed:
            self._admin.close()
        self._admin = None

    @staticmethod
    def _quote(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    # -- names ------------------------------------------------------------------------------

    def snapshot_name(self, fingerprint: str, key: str) -> str:
        """``mt_<test db>_<graph>_<target>``: 34 characters, under PostgreSQL's 63."""
        return f"{self.prefix}{fingerprint[:12]}_{_short(key)}"

    @property
    def run_name(self) -> str:
        """The throwaway copy a test runs on (one at a time per test database)."""
        return f"{self.prefix}{_RUN}"

    def existing(self) -> list[str]:
        rows = self._execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY datname",
            (self.prefix.replace("_", r"\_") + "%",),
        )
        return [str(row[0]) for row in rows]

    def exists(self, name: str) -> bool:
        if name in self._known:
            return True
        found = bool(self._execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)))
        if found:
            self._known.add(name)
        return found

    # -- operations -------------------------------------------------------------------------

    def drop(self, name: str) -> None:
        warm = self._warm.pop(name, None)
        if warm is not None:
            warm.close()
        self._execute(f"DROP DATABASE IF EXISTS {self._quote(name)} WITH (FORCE)")
        self._known.discard(name)

    def clone(self, template: str, name: str) -> None:
        """``name`` becomes a copy of ``template`` (which must have no open sessions)."""
        self.drop(name)
        sql = f"CREATE DATABASE {self._quote(name)} TEMPLATE {self._quote(template)}"
        if self._server_version() >= 150000:
            # FILE_COPY copies the files and checkpoints; WAL_LOG (the PG 15 default) writes
            # every page through the WAL, which is slower for small databases.
            sql += " STRATEGY FILE_COPY"
        for attempt in range(20):
            try:
                self._execute(sql)
                return
            except Exception as exc:  # the driver's ObjectInUse, psycopg 2 or 3
                if not _is_object_in_use(exc):
                    raise
                if attempt == 19:
                    raise SnapshotError(
                        f"Cannot copy database '{template}': other sessions are connected to "
                        f"it ({self._sessions(template)}). Close them (a migration test must "
                        "not run inside an open transaction on that database, e.g. pytest-"
                        "django's non-transactional `db` fixture)."
                    ) from exc
                time.sleep(0.05)

    def create_empty(self, name: str) -> None:
        """``name`` becomes a new, empty database, created as Django creates the test
        database (the alias' TEST ``TEMPLATE``, ``CHARSET`` and ``COLLATION``)."""
        self.drop(name)
        suffix = self.wrapper_for(self.db_name).creation.sql_table_creation_suffix()
        self._execute(f"CREATE DATABASE {self._quote(name)} {suffix}".rstrip())

    def has_snapshot(self, template: str) -> bool:
        """The snapshot exists: as its pristine template, its warm copy, or both."""
        return self.exists(self.warm_name(template)) or self.exists(template)

    def publish_warm(self, building: str, template: str) -> None:
        """A freshly built snapshot goes straight into place as the warm copy.

        The warm copy is equal to the snapshot whenever no test runs on it (every test's
        transaction is rolled back, sequences included), so the pristine template is only
        copied from it when a test needs a copy of its own (``copy_snapshot``): a run whose
        tests all fit in a transaction copies nothing but the test database once.
        """
        self.publish(building, self.warm_name(template))

    def copy_snapshot(self, template: str, name: str) -> None:
        """``name`` becomes a copy of the snapshot ``template`` (for a test that commits)."""
        if self.exists(template):
            self.clone(template, name)
            return
        warm = self.warm_name(template)
        wrapper = self._warm.get(warm)
        if wrapper is not None:
            if wrapper.in_atomic_block:
                raise SnapshotError(f"The warm copy '{warm}' is in use by a test.")
            wrapper.close()  # reconnects on next use
        self.clone(warm, template)  # the pristine template, kept for the next ones
        self.clone(template, name)

    def publish(self, building: str, name: str) -> None:
        """Rename a finished copy into place (so a half-built snapshot is never used)."""
        self.drop(name)
        self._execute(f"ALTER DATABASE {self._quote(building)} RENAME TO {self._quote(name)}")
        self._known.add(name)

    def prune(self, fingerprint: str) -> None:
        """Drop snapshots of this test database made for another migration graph."""
        if self._pruned_for == fingerprint:
            return
        keep = f"{self.prefix}{fingerprint[:12]}_"
        for name in self.existing():
            if not name.startswith(keep):
                self.drop(name)
                self.stats.dropped += 1
        self._pruned_for = fingerprint

    def drop_all(self) -> None:
        for name in self.existing():
            self.drop(name)
            self.stats.dropped += 1
        self._pruned_for = None

    def _server_version(self) -> int:
        admin = self._connect_admin()
        info = getattr(admin, "info", None)  # psycopg 3; psycopg 2 has .server_version
        return int(info.server_version if info is not None else admin.server_version)

    def _sessions(self, name: str) -> str:
        rows = self._execute(
            "SELECT pid, coalesce(application_name, ''), state FROM pg_stat_activity "
            "WHERE datname = %s",
            (name,),
        )
        return ", ".join(f"pid {pid} {app!r} {state}" for pid, app, state in rows) or "none now"

    # -- switching the alias --------------------------------------------------------------------

    def wrapper_for(self, name: str) -> BaseDatabaseWrapper:
        """A connection for ``alias`` that talks to database ``name``."""
        return self._wrapper_class({**self.settings_dict, "NAME": name}, alias=self.alias)

    # -- warm copies: one long-lived copy per snapshot, each test inside a rolled-back transaction

    def warm(self, template: str) -> BaseDatabaseWrapper:
        """An open connection (for ``alias``) to the warm copy of ``template``.

        Tests run on it inside a transaction that is rolled back, so the copy stays equal to
        the snapshot and is made once, not once per test. With ``--reuse-db`` it is kept for
        the next run like the snapshot itself.
        """
        name = self.warm_name(template)
        wrapper = self._warm.get(name)
        if wrapper is None:
            if not self.exists(name):
                self.clone(template, name)
            wrapper = self._warm[name] = self.wrapper_for(name)
        return wrapper

    @staticmethod
    def warm_name(template: str) -> str:
        return f"{template}_w"

    def discard_warm(self, template: str) -> None:
        """Drop a warm copy whose state is in doubt; the next test makes a new one (from the
        pristine template, or by building the snapshot again when there is none)."""
        name = self.warm_name(template)
        wrapper = self._warm.pop(name, None)
        if wrapper is not None:
            wrapper.close()
        self.drop(name)

    @contextmanager
    def swapped(self, wrapper: BaseDatabaseWrapper) -> Iterator[BaseDatabaseWrapper]:
        """Point ``connections[alias]`` at ``wrapper`` for the block (it stays open)."""
        original = connections[self.alias]
        connections[self.alias] = wrapper
        try:
            yield wrapper
        finally:
            connections[self.alias] = original

    @contextmanager
    def using(self, name: str) -> Iterator[BaseDatabaseWrapper]:
        """Point ``connections[alias]`` at database ``name`` for the block."""
        original = connections[self.alias]
        wrapper = self.wrapper_for(name)
        connections[self.alias] = wrapper
        try:
            yield wrapper
        finally:
            wrapper.close()
            connections[self.alias] = original


# -- process-wide registry ----------------------------------------------------------------------

_stores: dict[tuple[str, str], SnapshotStore] = {}


@dataclass
class Policy:
    """Set by the pytest plugin: keep snapshots for the next run (``--reuse-db``), or start
    from none (``--create-db``)."""

    keep: bool = False
    fresh: bool = False


policy = Policy()
_freshened: set[tuple[str, str]] = set()


def store_for(wrapper: BaseDatabaseWrapper) -> SnapshotStore:
    key = (wrapper.alias, str(wrapper.settings_dict["NAME"]))
    store = _stores.get(key)
    if store is None:
        store = _stores[key] = SnapshotStore(wrapper)
    if policy.fresh and key not in _freshened:
        store.drop_all()
        _freshened.add(key)
    return store


_finished = Stats()


def totals() -> Stats:
    """What this process did with snapshots so far, finished stores included."""
    total = Stats(
        list(_finished.built), list(_finished.forward), list(_finished.reused), _finished.dropped
    )
    for store in _stores.values():
        total.built += store.stats.built
        total.forward += store.stats.forward
        total.reused += store.stats.reused
        total.dropped += store.stats.dropped
    return total


def finish(keep: bool | None = None) -> None:
    """End of a test run: drop snapshots unless they are kept for the next run; close."""
    keep = policy.keep if keep is None else keep
    for store in list(_stores.values()):
        _finished.built += store.stats.built
        _finished.forward += store.stats.forward
        _finished.reused += store.stats.reused
        try:
            if keep:
                store.close()  # warm copies are clean (rolled back): kept with the snapshots
                store.drop(store.run_name)
            else:
                store.drop_all()
        finally:
            store.close()
    _stores.clear()
    _freshened.clear()


def _finish_at_exit() -> None:
    with contextlib.suppress(Exception):  # the server may be gone at interpreter exit
        finish()


atexit.register(_finish_at_exit)


def _is_object_in_use(exc: BaseException) -> bool:
    """PostgreSQL's object_in_use (SQLSTATE 55006), never read from the message."""
    return sqlstate(exc) == "55006"
