"""Test databases cloned from PostgreSQL templates keyed by what the migrated schema depends on.

Replaying every migration to create a test database costs time proportional to the history.
A template database that already holds the migrated schema (and whatever data migrations
seeded) is copied by ``CREATE DATABASE … TEMPLATE`` in a time that does not depend on it:

- :class:`Key` — the content a migrated database depends on: every migration file's bytes,
  the Django and migtools versions, the settings that shape the schema (``INSTALLED_APPS``,
  ``MIGRATION_MODULES``, the engine, routers, ``AUTH_USER_MODEL``, ``MIGTOOLS_*``…) and the
  models of apps without migrations (``migrate --run-syncdb`` creates their tables). Files are
  read, not imported: hashing 5,000 migration files costs a few hundredths of a second.
- :class:`TemplateStore` — the templates on one database server, named ``mt_tpl_<hash>``,
  each carrying its key in its database comment. A miss builds the template once, under an
  advisory lock (pytest-xdist workers wait, then clone); when the cached template of an
  earlier history only lacks migrations added since, the build starts from a copy of it and
  applies only those. Templates are pruned to the last :data:`KEEP` used on the server.

No printing and no Django test-framework imports: :mod:`migtools.testing.creation` composes
this into a database creation class.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import django
from django.apps import apps
from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.loader import MigrationLoader

import migtools
from migtools.dberrors import sqlstate
from migtools.errors import SnapshotError

PREFIX = "mt_tpl_"
#: Templates kept per project on a database server (the most recently used ones).
KEEP = 3
#: A template of another project (other apps) is dropped once unused for this long (seconds):
#: a server several projects share keeps each one's templates, and none forever.
STALE_AFTER = 30 * 24 * 3600
_BUILDING = "_b"
_LOCK_NAMESPACE = 0x6D74  # "mt": first half of the advisory lock key
_MARK = "migtools-template"


# -- the key ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """What a migrated database depends on: ``base`` (versions, settings, unmigrated models)
    and each migration file's hash (``"app.name" -> sha``)."""

    base: str
    migrations: dict[str, str] = field(hash=False)

    @property
    def digest(self) -> str:
        sha = hashlib.sha256(self.base.encode())
        for node in sorted(self.migrations):
            sha.update(f"\0{node}\0{self.migrations[node]}".encode())
        return sha.hexdigest()[:24]

    @property
    def name(self) -> str:
        """The template's database name (31 characters, under PostgreSQL's 63)."""
        return PREFIX + self.digest

    def meta(self) -> str:
        """The template's database comment: enough to find it again as a prefix."""
        return json.dumps(
            {_MARK: 1, "base": self.base, "used": time.time(), "migrations": self.migrations},
            separators=(",", ":"),
            sort_keys=True,
        )


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _files(directory: Path) -> Iterator[Path]:
    yield from sorted(path for path in directory.rglob("*.py") if "__pycache__" not in path.parts)


def _migrations_dir(label: str) -> Path | None:
    """The directory of an app's migrations package, found without importing it; ``None``
    when the app has no migrations (Django then creates its tables from the models)."""
    module_name, _explicit = MigrationLoader.migrations_module(label)
    if module_name is None:
        return None
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations or spec.origin is None:
        return None  # a plain module or a namespace package: Django reads no migrations there
    return Path(spec.origin).parent


def _settings_text(alias: str, wrapper: BaseDatabaseWrapper) -> list[str]:
    test = wrapper.settings_dict.get("TEST") or {}
    names = sorted(
        name
        for name in dir(settings)
        if name.startswith("MIGTOOLS_") and name != "MIGTOOLS_TEST_TEMPLATES"
    )
    return [
        f"django={django.VERSION!r}",
        f"migtools={migtools.__version__}",
        f"alias={alias}",
        f"engine={wrapper.settings_dict.get('ENGINE')}",
        f"charset={test.get('CHARSET')!r} template={test.get('TEMPLATE')!r}",
        f"apps={list(settings.INSTALLED_APPS)!r}",
        f"migration_modules={sorted(dict(settings.MIGRATION_MODULES or {}).items())!r}",
        f"routers={list(settings.DATABASE_ROUTERS)!r}",
        f"user={settings.AUTH_USER_MODEL!r} auto={settings.DEFAULT_AUTO_FIELD!r}",
        *(f"{name}={getattr(settings, name)!r}" for name in names),
    ]


def compute_key(wrapper: BaseDatabaseWrapper) -> Key:
    """The key of the database ``migrate`` would build on ``wrapper``'s alias now."""
    base = hashlib.sha256("\n".join(_settings_text(wrapper.alias, wrapper)).encode())
    migrations: dict[str, str] = {}
    for config in apps.get_app_configs():
        directory = _migrations_dir(config.label)
        if directory is None:
            models = getattr(config.models_module, "__file__", None)
            if models:
                path = Path(models)
                sources = _files(path.parent) if path.name == "__init__.py" else iter([path])
                for source in sources:
                    base.update(f"\0{config.label}\0{source.name}\0".encode())
                    base.update(source.read_bytes())
            continue
        for path in sorted(directory.glob("*.py")):
            data = path.read_bytes()
            if path.name.startswith(("_", "~")):
                base.update(f"\0{config.label}\0{path.name}\0".encode() + data)
            else:
                migrations[f"{config.label}.{path.stem}"] = _sha(data)
    return Key(base.hexdigest()[:24], migrations)


def usable_prefix(
    old: dict[str, str], new: Key, graph_parents: Callable[[str], set[str] | None] | None = None
) -> bool:
    """A template holding ``old`` can be brought to ``new`` by applying only the migrations
    ``new`` adds: every old file is unchanged and, when ``graph_parents`` is given (a
    migration's parents in the current graph, ``None`` for a node not in it, e.g. replaced by
    a squash), no new migration must run before an old one."""
    if not old or len(old) >= len(new.migrations):
        return False
    if any(new.migrations.get(node) != sha for node, sha in old.items()):
        return False
    if graph_parents is not None:
        for node in old:
            parents = graph_parents(node)
            if parents is not None and not parents <= old.keys():
                return False
    return True


# -- the store ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """How a test database got its template (the creation class logs it)."""

    template: str
    built: bool = False
    base: str | None = None  # the template of an earlier history the build started from
    applied: int = 0  # migrations applied by the build
    waited: bool = False  # another process built it while this one waited


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _apps(meta: dict[str, Any]) -> frozenset[str]:
    """A template's project, as far as pruning is concerned: the apps its migrations are of."""
    migrations = meta.get("migrations")
    if not isinstance(migrations, dict):
        return frozenset()
    return frozenset(str(node).partition(".")[0] for node in migrations)


def _used(meta: dict[str, Any]) -> float:
    used = meta.get("used", 0)
    return float(used) if isinstance(used, int | float) else 0.0


class TemplateStore:
    """The templates on the server of one database alias, over a maintenance connection."""

    def __init__(self, wrapper: BaseDatabaseWrapper) -> None:
        self.settings_dict: dict[str, Any] = dict(wrapper.settings_dict)
        self._wrapper_class = type(wrapper)
        self._admin: Any = None

    # -- maintenance connection ----------------------------------------------------------------

    def _connect(self) -> Any:
        if self._admin is None or self._admin.closed:
            maintenance = self._wrapper_class(
                {**self.settings_dict, "NAME": "postgres"}, alias="__migtools_templates__"
            )
            driver: Any = maintenance.Database  # type: ignore[attr-defined]
            self._admin = driver.connect(**maintenance.get_connection_params())
            self._admin.autocommit = True
        return self._admin

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._connect().cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []

    def close(self) -> None:
        if self._admin is not None and not self._admin.closed:
            self._admin.close()
        self._admin = None

    # -- databases -----------------------------------------------------------------------------

    def exists(self, name: str) -> bool:
        return bool(self.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)))

    def comment_of(self, name: str) -> str | None:
        rows = self.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (name,),
        )
        return str(rows[0][0]) if rows and rows[0][0] is not None else None

    def set_comment(self, name: str, text: str) -> None:
        literal = "'" + text.replace("'", "''") + "'"
        self.execute(f"COMMENT ON DATABASE {_quote(name)} IS {literal}")

    def drop(self, name: str, *, force: bool = True) -> None:
        self.execute(f"DROP DATABASE IF EXISTS {_quote(name)}" + (" WITH (FORCE)" if force else ""))

    def create(self, name: str, template: str | None, encoding: str | None = None) -> None:
        """``CREATE DATABASE name [TEMPLATE template]``, retried while the template has a
        session open (another process finishing with it)."""
        sql = f"CREATE DATABASE {_quote(name)}"
        if template:
            sql += f" TEMPLATE {_quote(template)}"
            if self._server_version() >= 150000:
                sql += " STRATEGY FILE_COPY"  # for small databases, faster than WAL_LOG
        if encoding:
            sql += " ENCODING '" + encoding.replace("'", "''") + "'"
        for attempt in range(40):
            try:
                self.execute(sql)
                return
            except Exception as exc:
                if sqlstate(exc) != "55006" or attempt == 39:  # object_in_use
                    raise
                time.sleep(0.05)

    def _server_version(self) -> int:
        admin = self._connect()
        info = getattr(admin, "info", None)  # psycopg 3; psycopg 2 has .server_version
        return int(info.server_version if info is not None else admin.server_version)

    # -- test databases ------------------------------------------------------------------------

    def key_of(self, test_db: str) -> str | None:
        """The key digest a test database was cloned for (``None``: not one of ours)."""
        comment = self.comment_of(test_db)
        if comment and comment.startswith(f"{_MARK} "):
            return comment.split(" ", 1)[1]
        return None

    def mark(self, test_db: str, key: Key) -> None:
        self.set_comment(test_db, f"{_MARK} {key.digest}")

    # -- templates -----------------------------------------------------------------------------

    def templates(self) -> dict[str, dict[str, Any]]:
        """Every finished template on the server: name -> its key (from its comment)."""
        rows = self.execute(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE datname LIKE %s",
            (PREFIX.replace("_", r"\_") + "%",),
        )
        found: dict[str, dict[str, Any]] = {}
        for name, comment in rows:
            if str(name).endswith(_BUILDING):
                continue
            try:
                meta = json.loads(comment or "")
            except ValueError:
                meta = None
            found[str(name)] = meta if isinstance(meta, dict) and _MARK in meta else {}
        return found

    @contextlib.contextmanager
    def lock(self, key: Key) -> Iterator[None]:
        """A server-wide advisory lock for building ``key``'s template."""
        second = int(key.digest[:8], 16) - 2**31
        self.execute("SELECT pg_advisory_lock(%s, %s)", (_LOCK_NAMESPACE, second))
        try:
            yield
        finally:
            self.execute("SELECT pg_advisory_unlock(%s, %s)", (_LOCK_NAMESPACE, second))

    def touch(self, key: Key) -> None:
        """Record a use (pruning keeps the most recently used templates)."""
        with contextlib.suppress(Exception):  # concurrent COMMENTs may collide: harmless
            self.set_comment(key.name, key.meta())

    def best_prefix(
        self, key: Key, graph_parents: Callable[[], Callable[[str], set[str] | None]]
    ) -> str | None:
        """The cached template of an earlier history with the most migrations in common
        (the migration graph is loaded only when some template's files qualify)."""
        candidates = sorted(
            (
                (len(meta["migrations"]), name, meta["migrations"])
                for name, meta in self.templates().items()
                if meta.get("base") == key.base
                and isinstance(meta.get("migrations"), dict)
                and usable_prefix(meta["migrations"], key)
            ),
            reverse=True,
        )
        parents = graph_parents() if candidates else None
        for _count, name, old in candidates:
            if usable_prefix(old, key, parents):
                return name
        return None

    def ensure(
        self,
        key: Key,
        build: Callable[[str], int],
        graph_parents: Callable[[], Callable[[str], set[str] | None]],
        *,
        template: str | None = None,
        encoding: str | None = None,
    ) -> Outcome:
        """``key``'s template, built when missing: ``build(database)`` migrates ``database``
        and returns how many migrations it applied. ``template``/``encoding``: the test
        settings' own ``TEMPLATE``/``CHARSET`` for a build from scratch."""
        if self.exists(key.name):
            self.touch(key)
            return Outcome(key.name)
        with self.lock(key):
            if self.exists(key.name):  # built by another process while this one waited
                self.touch(key)
                return Outcome(key.name, waited=True)
            base = self.best_prefix(key, graph_parents)
            building = key.name + _BUILDING
            self.drop(building)  # left by a build that died
            self.create(building, base or template, encoding)
            try:
                applied = build(building)
                self.set_comment(building, key.meta())
                # Nobody connects to a template by accident (that would block every clone).
                self.execute(f"ALTER DATABASE {_quote(building)} ALLOW_CONNECTIONS false")
                self.execute(f"ALTER DATABASE {_quote(building)} RENAME TO {_quote(key.name)}")
            except BaseException:
                with contextlib.suppress(Exception):
                    self.drop(building)
                raise
        self.prune(key.name)
        return Outcome(key.name, built=True, base=base, applied=applied)

    def clone(self, template: str, test_db: str, key: Key) -> None:
        """``test_db`` becomes a copy of ``template``, marked with ``key``."""
        try:
            self.create(test_db, template)
        except Exception as exc:
            if sqlstate(exc) == "3D000":  # invalid_catalog_name: the template vanished
                raise SnapshotError(
                    f"The test-database template '{template}' was dropped while in use (pruned "
                    "by another run on this server?). Run the tests again."
                ) from exc
            raise
        self.mark(test_db, key)

    def prune(self, current: str, keep: int = KEEP, *, now: float | None = None) -> list[str]:
        """Drop all but the ``keep`` most recently used templates of ``current``'s project
        (the same installed apps), and other projects' templates unused for
        :data:`STALE_AFTER`: another project on the same server keeps its own."""
        found = self.templates()
        project = _apps(found.get(current, {}))
        now = time.time() if now is None else now
        mine = sorted(
            (name for name in found if _apps(found[name]) == project),
            key=lambda name: (name == current, _used(found[name])),
            reverse=True,
        )
        stale = [
            name
            for name in found
            if _apps(found[name]) != project and now - _used(found[name]) > STALE_AFTER
        ]
        dropped: list[str] = []
        for name in mine[keep:] + stale:
            with contextlib.suppress(Exception):  # in use by a clone right now: next time
                self.drop(name, force=False)
                dropped.append(name)
        return dropped

    def drop_all(self) -> list[str]:
        names = list(self.templates())
        for name in names:
            self.drop(name)
        return names
