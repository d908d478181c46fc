"""The migration graph as it stands on disk, read with ``ast`` and never imported.

Computes each app's leaf exactly as Django's ``MigrationLoader(None)`` would: internal
dependencies first, then external ones (``__first__``/``__latest__`` resolved), then
``run_before``, then every squashed migration stands in for the migrations it replaces
(no database, so nothing counts as applied). Several leaves in one app is a conflict.

A file too dynamic to read statically (computed dependencies, an inherited ``Migration``)
is reported with file:line, and only that app's migrations are imported for the answer.
"""

from __future__ import annotations

import ast
import gc
import importlib
import importlib.util
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from migtools import source as pysource
from migtools.errors import (
    ConflictError,
    DynamicMigrationError,
    GraphError,
    MigrationFileError,
    MigrationSyntaxError,
)
from migtools.graph import cache as parsecache
from migtools.graph import diagnosis
from migtools.graph.package import locate as locate  # re-exported: callers name disk.locate

Key = tuple[str, str]

_READ_ATTRS = ("dependencies", "replaces", "run_before", "initial")
_KNOWN_BASES = {"Migration", "CheckedMigration"}

# Where ``settings.X`` in a migration file is looked up: Django's settings for manage.py, the
# ``[tool.migtools]`` table for the settings-free CLI (:mod:`migtools.graph.checkout`). Django
# is imported only when Django's settings are asked, so the CLI never imports it for reading.
SettingLookup = Callable[[str], object]


def django_setting(name: str) -> object:
    from django.conf import settings

    return getattr(settings, name, None)


@cache
def _nested_replacements() -> bool:
    """Django 6.0 replaces squashes of squashes inner-first; 5.2 replaces in load order.
    Where Django is not installed (the lockfile hook's bare python3), as current Django does."""
    try:
        import django
    except ImportError:
        return True
    return django.VERSION >= (6, 0)


@dataclass(frozen=True)
class MigrationFile:
    """What the graph needs from one migration file."""

    app_label: str
    name: str
    path: Path
    dependencies: tuple[Key, ...] = ()
    replaces: tuple[Key, ...] = ()
    run_before: tuple[Key, ...] = ()
    initial: bool = False
    line: int = 1
    # ``(rule id, line)`` of the literal keys of ``ignore_rules = {...}`` in a class body (the
    # system check on unknown ids reads them from here, not from 5,000 files).
    ignored_rules: tuple[tuple[str, int], ...] = ()

    @property
    def key(self) -> Key:
        return (self.app_label, self.name)


@dataclass
class AppMigrations:
    """One app's migration package: where it is and what it holds."""

    label: str
    module: str | None
    directory: Path | None
    files: dict[str, MigrationFile] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- reading


# Settings read while parsing the current file (recorded for the parse cache), and where the
# current file's ``settings.X`` are looked up.
_settings_used: dict[str, str] | None = None
_lookup: SettingLookup = django_setting


def _key_tuple(node: ast.expr, path: Path) -> Key:
    if isinstance(node, ast.Call):
        func = node.func
        fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if fname == "swappable_dependency" and len(node.args) == 1 and not node.keywords:
            value = _setting_value(node.args[0], path)
            return (value.split(".", 1)[0], "__first__")
        raise DynamicMigrationError(str(path), node.lineno, "call in a dependency list")
    if isinstance(node, _NOT_A_KEY_LIST) or (
        isinstance(node, ast.Tuple | ast.List)
        and len(node.elts) != 2
        and not any(isinstance(e, ast.Starred) for e in node.elts)
    ):
        raise MigrationFileError(
            str(path),
            node.lineno,
            f"a dependency must be an (app_label, migration_name) pair, not {ast.unparse(node)}",
        )
    if isinstance(node, ast.Tuple | ast.List) and len(node.elts) == 2:
        # ("__setting__", "AUTH_USER_MODEL") is the autodetector's internal spelling; the
        # loader takes it literally (an app called "__setting__"), and so do we.
        parts = [_string(elt, path) for elt in node.elts]
        return (parts[0], parts[1])
    raise DynamicMigrationError(str(path), node.lineno, "a dependency is not a 2-tuple of strings")


def _string(node: ast.expr, path: Path) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "settings"
    ):
        return _setting_value(node, path)
    raise DynamicMigrationError(str(path), node.lineno, "a migration name is not a string literal")


def _setting_value(node: ast.expr, path: Path) -> str:
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "settings"
    ):
        value = _lookup(node.attr)
        if isinstance(value, str):
            if _settings_used is not None:
                _settings_used[node.attr] = value
            return value
        raise DynamicMigrationError(str(path), node.lineno, f"settings.{node.attr} is not a string")
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    raise DynamicMigrationError(str(path), node.lineno, "swappable_dependency of a non-setting")


# Literals Django's loader cannot take as a list of keys (it fails with a TypeError).
_NOT_A_KEY_LIST = (ast.Constant, ast.Dict, ast.DictComp, ast.JoinedStr)


def _key_list(node: ast.expr, path: Path, attribute: str) -> tuple[Key, ...]:
    if isinstance(node, ast.List | ast.Tuple):
        return tuple(_key_tuple(elt, path) for elt in node.elts)
    if isinstance(node, _NOT_A_KEY_LIST):
        raise MigrationFileError(str(path), node.lineno, _not_keys(attribute, ast.unparse(node)))
    raise DynamicMigrationError(str(path), node.lineno, "not a literal list or tuple")


def _not_keys(attribute: str, value: str) -> str:
    return (
        f"{attribute} must be a list of (app_label, migration_name) pairs, not {value} "
        "(Django's loader cannot read it)"
    )


def _base_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def parse_migration_source(
    source: str,
    path: Path,
    app_label: str,
    name: str,
    lookup: SettingLookup = django_setting,
) -> MigrationFile:
    """Read one migration's graph attributes from its source text (``settings.X`` from
    ``lookup``)."""
    global _lookup
    previous, _lookup = _lookup, lookup
    try:
        return _parse_migration_source(source, path, app_label, name)
    finally:
        _lookup = previous


def _parse_migration_source(source: str, path: Path, app_label: str, name: str) -> MigrationFile:
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise MigrationSyntaxError(str(path), exc.lineno or 1, exc.msg) from None
    klass: ast.ClassDef | None = None
    for stmt in tree.body:
        if isinstance(stmt, ast.ClassDef) and stmt.name == "Migration":
            klass = stmt
        elif isinstance(stmt, ast.Assign | ast.ImportFrom | ast.Import) and _binds(
            stmt, "Migration"
        ):
            raise DynamicMigrationError(
                str(path), stmt.lineno, "'Migration' is not a class statement"
            )
    if klass is None:
        raise MigrationFileError(
            str(path),
            1,
            f"migration {app_label}.{name} has no Migration class (Django's loader imports every "
            "module of a migrations package; start a helper module's name with '_' to keep it "
            "there)",
        )
    values: dict[str, ast.expr] = {}
    for stmt in klass.body:
        targets: list[ast.expr] = []
        if isinstance(stmt, ast.Assign):
            targets = list(stmt.targets)
            value = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets = [stmt.target]
            value = stmt.value
        for target in targets:
            if isinstance(target, ast.Name) and target.id in _READ_ATTRS:
                values[target.id] = value
    missing = [a for a in ("dependencies", "replaces", "run_before") if a not in values]
    if missing and any(_base_name(b) not in _KNOWN_BASES for b in klass.bases):
        raise DynamicMigrationError(
            str(path), klass.lineno, f"Migration inherits {', '.join(missing)} from another class"
        )
    initial = False
    ignored = ignored_rule_ids(tree) if "ignore_rules" in source else ()
    if "initial" in values:
        node = values["initial"]
        if not isinstance(node, ast.Constant):
            raise DynamicMigrationError(str(path), node.lineno, "'initial' is not a literal")
        initial = bool(node.value)
    return MigrationFile(
        app_label=app_label,
        name=name,
        path=path,
        dependencies=_key_list(values["dependencies"], path, "dependencies")
        if "dependencies" in values
        else (),
        replaces=_key_list(values["replaces"], path, "replaces") if "replaces" in values else (),
        run_before=_key_list(values["run_before"], path, "run_before")
        if "run_before" in values
        else (),
        initial=initial,
        line=klass.lineno,
        ignored_rules=ignored,
    )


def ignored_rule_ids(tree: ast.AST) -> tuple[tuple[str, int], ...]:
    """``(rule id, line)`` of the literal keys of ``ignore_rules = {...}`` in a class body."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt in node.body:
            target = None
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target, value = stmt.targets[0], stmt.value
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                target, value = stmt.target, stmt.value
            if not (isinstance(target, ast.Name) and target.id == "ignore_rules"):
                continue
            if isinstance(value, ast.Dict):
                for key in value.keys:
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        found.append((key.value, key.lineno))
    return tuple(found)


def _binds(stmt: ast.stmt, name: str) -> bool:
    if isinstance(stmt, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets)
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        return any((a.asname or a.name.split(".")[0]) == name for a in stmt.names)
    return False


def _imported_file(app_label: str, module: str, name: str, path: Path) -> MigrationFile:
    try:
        imported = importlib.import_module(f"{module}.{name}")
    except Exception as exc:
        error = diagnosis.import_failure(exc, exc.__traceback__)
        if error is None:
            raise
        raise error from exc
    migration = getattr(imported, "Migration", None)
    if migration is None:
        raise MigrationFileError(
            str(path), 1, f"migration {app_label}.{name} has no Migration class"
        )
    return MigrationFile(
        app_label=app_label,
        name=name,
        path=path,
        dependencies=_imported_keys(migration, "dependencies", path),
        replaces=_imported_keys(migration, "replaces", path),
        run_before=_imported_keys(migration, "run_before", path),
        initial=bool(migration.initial),
    )


def _imported_keys(migration: type, attribute: str, path: Path) -> tuple[Key, ...]:
    """The keys of an imported migration's attribute, checked as Django's loader uses them."""
    value = getattr(migration, attribute, ())
    line = diagnosis.line_of(path)
    try:
        keys = tuple(tuple(k) for k in value)
    except TypeError:
        raise MigrationFileError(str(path), line, _not_keys(attribute, repr(value))) from None
    for key in keys:
        if len(key) != 2 or not all(isinstance(part, str) for part in key):
            raise MigrationFileError(
                str(path),
                line,
                f"a dependency must be an (app_label, migration_name) pair, not {key!r}",
            )
    return keys


def _child(directory: Path, filename: str) -> Path:
    """``directory / filename`` without re-parsing the directory (thousands of files)."""
    make = getattr(directory, "_make_child_relpath", None)
    return make(filename) if make is not None else directory / filename


def stamps(directory: Path) -> dict[str, parsecache.Stamp]:
    """The migration modules of a directory as Django's loader lists them (``.py`` files not
    starting with ``_`` or ``~``), with their (size, mtime_ns), from one directory listing."""
    found: dict[str, parsecache.Stamp] = {}
    packages: set[str] = set()
    with os.scandir(directory) as entries:
        for entry in entries:
            name = entry.name
            if name.endswith(".py") and name[0] not in "_~" and "." not in name[:-3]:
                if entry.is_file():
                    stat = entry.stat()
                    found[name[:-3]] = (stat.st_size, stat.st_mtime_ns)
            elif "." not in name and entry.is_dir():
                packages.add(name)
    for name in packages & set(found):
        del found[name]  # a package of that name wins, and packages are not migrations
    return dict(sorted(found.items()))


def _read(path: Path) -> str:
    """The file's text as Python decodes it (coding cookie, byte-order mark)."""
    try:
        return pysource.read(path)
    except SyntaxError as exc:
        raise MigrationSyntaxError(str(path), exc.lineno or 1, exc.msg) from None


def _parse_cached(
    cache: parsecache.ParseCache | None,
    path: Path,
    stamp: parsecache.Stamp,
    app_label: str,
    name: str,
    lookup: SettingLookup = django_setting,
    used_out: dict[str, str] | None = None,
) -> MigrationFile:
    """One file's graph attributes, from the parse cache when its entry still holds; the
    settings its answer depends on are added to ``used_out``."""
    global _settings_used
    if cache is not None:
        entry = cache.get(name, stamp, lookup)
        if entry is not None:
            if used_out is not None:
                used_out.update(entry[1])
            return MigrationFile(
                app_label,
                name,
                path,
                entry[2],
                entry[3],
                entry[4],
                entry[5],
                entry[6],
                entry[7],
            )
    _settings_used = {}
    try:
        parsed = parse_migration_source(_read(path), path, app_label, name, lookup)
        used = _settings_used
    finally:
        _settings_used = None
    if used_out is not None:
        used_out.update(used)
    if cache is not None:
        cache.put(
            name,
            stamp,
            used,
            parsed.dependencies,
            parsed.replaces,
            parsed.run_before,
            parsed.initial,
            parsed.line,
            parsed.ignored_rules,
        )
    return parsed


@dataclass
class _Read:
    """An app as :func:`read_directory` last read it in this process: valid while its
    directory lists the same files with the same stamps and the settings its files name
    keep their values."""

    stamps: dict[str, parsecache.Stamp]
    used: dict[str, str]
    app: AppMigrations


# One process often reads the same graph several times (the system checks, then the
# command): each app's reading is kept (the parse cache keeps it across processes).
_read_memo: dict[tuple[object, ...], _Read] = {}


def read_app(app_label: str) -> AppMigrations:
    """Read every migration file of one app; import them only if one is too dynamic.

    Parsed results are remembered per file (see :mod:`migtools.graph.cache`).
    """
    module, directory = locate(app_label)
    return read_directory(app_label, module, directory)


def read_directory(
    app_label: str,
    module: str | None,
    directory: Path | None,
    lookup: SettingLookup = django_setting,
    names: Collection[str] | None = None,
) -> AppMigrations:
    """:func:`read_app` for a known migrations directory. With ``module`` None (the
    settings-free CLI, which imports nothing), a file too dynamic to read raises
    :class:`DynamicMigrationError` instead of importing the app's migrations. ``names``:
    only these modules (the ones git tracks, for a hook that judges a commit)."""
    app = AppMigrations(label=app_label, module=module, directory=directory)
    if directory is None or not directory.is_dir():
        return app
    memo_key = (app_label, module, str(directory), None if names is None else frozenset(names))
    enabled = parsecache.enabled()
    if _checked is not None and enabled and memo_key in _checked and memo_key in _read_memo:
        return _read_memo[memo_key].app
    stamps_now = stamps(directory)
    if names is not None:
        stamps_now = {n: stamp for n, stamp in stamps_now.items() if n in names}
    known = _read_memo.get(memo_key) if enabled else None
    if (
        known is not None
        and known.stamps == stamps_now
        and all(lookup(key) == value for key, value in known.used.items())
    ):
        if _checked is not None:
            _checked.add(memo_key)
        return known.app
    listing = {n: (_child(directory, f"{n}.py"), stamp) for n, stamp in stamps_now.items()}
    used: dict[str, str] = {}
    with paused_gc():
        cache = parsecache.ParseCache(directory) if enabled else None
        for name, (path, stamp) in listing.items():
            try:
                app.files[name] = _parse_cached(cache, path, stamp, app_label, name, lookup, used)
            except DynamicMigrationError as exc:
                if module is None:
                    raise
                app.warnings.append(
                    f"{exc}; imported the migrations of app '{app_label}' to read the graph "
                    "instead."
                )
                app.files = {
                    n: _imported_file(app_label, module, n, p) for n, (p, _) in listing.items()
                }
                return app
    if cache is not None:
        cache.prune(set(listing))
        cache.save()
        # Like the parse cache, trust a stamp only once the file is older than the file
        # system's timestamp granularity could hide a same-size edit.
        if all(
            stamp[1] / 1e9 <= cache.started - parsecache.RACY_SECONDS
            for stamp in stamps_now.values()
        ):
            if len(_read_memo) >= 512:  # a process reading many projects (a test session)
                _read_memo.clear()
            _read_memo[memo_key] = _Read(stamps_now, used, app)
            if _checked is not None:
                _checked.add(memo_key)
    return app


# Within ``files_unchanged``: the readings checked against their files since it was entered.
_checked: set[tuple[object, ...]] | None = None


def forget() -> None:
    """Drop what this process remembers of the graph (the parse cache on disk stays)."""
    _read_memo.clear()
    _load_memo.clear()


@contextmanager
def files_unchanged() -> Iterator[None]:
    """Within, an app read (or checked against its files) once since entering is not
    checked again (a command that writes no migration and reads the graph more than once:
    the system checks, then itself). What an earlier command read is checked as usual."""
    global _checked
    previous, _checked = _checked, set()
    try:
        yield
    finally:
        _checked = previous


@contextmanager
def settled_objects() -> Iterator[None]:
    """Within, the objects alive on entry (Django's set-up, the modules) are left out of the
    garbage collector's walks (``gc.freeze``): a command that builds a large graph pays a
    collection per so many new objects, each walking everything alive. Nothing changes when
    the process froze objects itself already."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def paused_gc() -> Iterator[None]:
    """Garbage collection off while thousands of small objects are made that stay alive (a
    full collection would walk every object of the process, repeatedly, for nothing)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --------------------------------------------------------------------------- the graph


class DiskGraph:
    """The migration graph of a set of apps, built as ``MigrationLoader(None)`` builds it.

    ``apps`` are the apps asked about (``conflicts()`` and the lockfile cover these);
    ``context`` are further apps read only so that references into them are checked as
    Django checks them (:func:`load` passes every installed app the asked-for apps reach).
    With ``strict``, an app in neither is not installed, and a reference to it is an error
    as in Django; without it, such references are trusted and skipped.
    """

    def __init__(
        self,
        apps: Iterable[AppMigrations],
        context: Iterable[AppMigrations] = (),
        *,
        strict: bool = False,
        registry: Sequence[str] | None = None,
    ) -> None:
        self.apps: dict[str, AppMigrations] = {app.label: app for app in apps}
        self.context: dict[str, AppMigrations] = {
            app.label: app for app in context if app.label not in self.apps
        }
        self.strict = strict
        self._registry = registry
        self._all: dict[str, AppMigrations] = {**self.apps, **self.context}
        self.files: dict[Key, MigrationFile] = {
            f.key: f for app in self._all.values() for f in app.files.values()
        }
        self.parents: dict[Key, set[Key]] = {key: set() for key in self.files}
        self.children: dict[Key, set[Key]] = {key: set() for key in self.files}
        # missing node -> the migration that named it, and how ("parent"/"child")
        self._dummies: dict[Key, tuple[Key, str]] = {}
        self._by_app: dict[str, list[Key]] | None = None
        self._build()
        self._index_nodes()

    @property
    def warnings(self) -> list[str]:
        """Files of the asked-for apps that could not be read statically."""
        return [w for app in self.apps.values() for w in app.warnings]

    def _migrated(self, label: str) -> bool:
        app = self._all.get(label)
        return app is not None and bool(app.files)

    def _known(self, label: str) -> bool:
        return self.strict or label in self._all

    def _add_node_if_missing(self, key: Key, origin: Key, role: str) -> None:
        if key not in self.parents:
            self.parents[key] = set()
            self.children[key] = set()
            self._dummies.setdefault(key, (origin, role))

    def _add_edge(self, child: Key, parent: Key, origin: Key) -> None:
        self._add_node_if_missing(child, origin, "child")
        self._add_node_if_missing(parent, origin, "parent")
        self.parents[child].add(parent)
        self.children[parent].add(child)

    def _check_key(self, key: Key, current_app: str) -> Key | None:
        """Django's ``MigrationLoader.check_key`` (with ``ignore_no_migrations=True``)."""
        if key[1] not in ("__first__", "__latest__") or key in self.parents:
            return key
        if key[0] == current_app:
            return None
        if key[0] not in self._all:
            if self.strict:
                raise GraphError(f"Dependency on unknown app: {key[0]}")
            return None
        if not self._migrated(key[0]):
            return None
        nodes = self.root_nodes(key[0]) if key[1] == "__first__" else self.leaves(key[0])
        return (key[0], nodes[0]) if nodes else None

    def _django_order(self) -> list[Key]:
        """The order Django's loader visits migrations in: apps in registry order, and within
        an app the iteration order of the set of names it builds (order decides how
        ``__first__``/``__latest__`` resolve mid-build and, before Django 6.0, whether a
        squash of a squash loads)."""
        labels_in_order = self._registry
        if labels_in_order is None:
            from django.apps import apps as django_apps

            labels_in_order = [config.label for config in django_apps.get_app_configs()]
        registry = {label: i for i, label in enumerate(labels_in_order)}
        labels = sorted(self._all, key=lambda label: (registry.get(label, len(registry)), label))
        order: list[Key] = []
        for label in labels:
            names = {name for name in sorted(self._all[label].files)}
            order.extend((label, name) for name in names)
        return order

    def _build(self) -> None:
        order = self._django_order()
        for key in order:
            for parent in self.files[key].dependencies:
                if parent[0] == key[0] and parent[1] != "__first__":
                    self._add_edge(key, parent, key)
        for key in order:
            mig = self.files[key]
            for parent in mig.dependencies:
                if parent[0] == key[0] or not self._known(parent[0]):
                    continue
                resolved = self._check_key(parent, key[0])
                if resolved is not None:
                    self._add_edge(key, resolved, key)
            for child in mig.run_before:
                if not self._known(child[0]):
                    continue
                resolved = self._check_key(child, key[0])
                if resolved is not None:
                    self._add_edge(resolved, key, key)
        replacements = [key for key in order if self.files[key].replaces]
        if replacements and _nested_replacements():
            progress: dict[Key, bool] = {}
            for key in replacements:
                self._replace_nested(key, progress)
        else:
            for key in replacements:
                self._replace(key, self.files[key].replaces)
        for dummy, (origin, role) in self._dummies.items():
            if dummy in self.parents:
                raise self._file_error(
                    origin,
                    f"Migration {origin[0]}.{origin[1]} dependencies reference nonexistent "
                    f"{role} node {dummy!r}.",
                    dummy,
                )
        self._check_acyclic()

    def _replace_nested(self, key: Key, progress: dict[Key, bool]) -> None:
        """Django 6.0's ``replace_migration``: squashes a squash replaces are done first."""
        done = progress.get(key)
        if done:
            return
        if done is False:
            raise GraphError(f"Cyclical squash replacement found, starting at {key!r}.")
        progress[key] = False
        for replaced in self.files[key].replaces:
            if replaced in self.files and self.files[replaced].replaces:
                self._replace_nested(replaced, progress)
        self._replace(key, self.files[key].replaces)
        progress[key] = True

    def _replace(self, replacement: Key, replaced_keys: Iterable[Key]) -> None:
        """Django's ``MigrationGraph.remove_replaced_nodes``."""
        replaced = set(replaced_keys)
        if replacement not in self.parents:
            raise GraphError(
                f"Unable to find replacement node {replacement!r}. It was either never added "
                "to the migration graph, or has been removed."
            )
        for old in replaced:
            if old not in self.parents:
                continue
            for child in self.children.pop(old):
                self.parents[child].discard(old)
                if child not in replaced:
                    self.parents[child].add(replacement)
                    self.children[replacement].add(child)
            for parent in self.parents.pop(old):
                self.children[parent].discard(old)
                if parent not in replaced:
                    self.children[parent].add(replacement)
                    self.parents[replacement].add(parent)
            self._dummies.pop(old, None)

    def _check_acyclic(self) -> None:
        state: dict[Key, int] = {}
        for start in sorted(self.parents):
            if start in state:
                continue
            stack: list[tuple[Key, list[Key]]] = [(start, sorted(self.parents[start]))]
            state[start] = 1
            while stack:
                node, pending = stack[-1]
                if not pending:
                    state[node] = 2
                    stack.pop()
                    continue
                nxt = pending.pop()
                if state.get(nxt) == 1:
                    cycle = [n for n, _ in stack]
                    cycle = cycle[cycle.index(nxt) :]
                    names = ", ".join(f"{a}.{n}" for a, n in cycle)
                    # each node depends on the next; the last one on the first
                    parent = cycle[1] if len(cycle) > 1 else cycle[0]
                    raise self._file_error(
                        cycle[0], f"Cycle in the migration graph: {names}", parent
                    )
                if nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, sorted(self.parents[nxt])))

    def _file_error(self, key: Key, reason: str, needle: Key) -> GraphError:
        """``reason`` at the line of ``key``'s file that names ``needle`` (file:line)."""
        found = self.files.get(key)
        if found is None:
            return GraphError(reason)
        line = diagnosis.line_of(found.path, needle)
        return MigrationFileError(diagnosis.shown(found.path), line, reason)

    # ------------------------------------------------------------------ queries

    def nodes(self, app_label: str | None = None) -> list[Key]:
        if app_label is None:
            return sorted(self.parents)
        index = self._by_app
        if index is None:  # still building: the node set changes
            return sorted(k for k in self.parents if k[0] == app_label)
        return list(index.get(app_label, ()))

    def _index_nodes(self) -> None:
        """After the build: each app's nodes, sorted, for the many per-app queries."""
        index: dict[str, list[Key]] = {}
        for key in sorted(self.parents):
            index.setdefault(key[0], []).append(key)
        self._by_app = index

    def leaves(self, app_label: str) -> list[str]:
        """Names of the app's nodes with no child in the same app (Django's leaf_nodes)."""
        return sorted(
            key[1]
            for key in self.nodes(app_label)
            if all(child[0] != app_label for child in self.children[key])
        )

    def root_nodes(self, app_label: str) -> list[str]:
        return sorted(
            key[1]
            for key in self.nodes(app_label)
            if all(parent[0] != app_label for parent in self.parents[key])
        )

    def conflicts(self) -> dict[str, list[str]]:
        result = {}
        for label in sorted(self.apps):
            leaves = self.leaves(label)
            if len(leaves) > 1:
                result[label] = leaves
        return result

    def leaf(self, app_label: str) -> str | None:
        leaves = self.leaves(app_label)
        if len(leaves) > 1:
            raise ConflictError({app_label: leaves})
        return leaves[0] if leaves else None

    def ancestors(self, key: Key) -> set[Key]:
        seen: set[Key] = set()
        stack = [key]
        while stack:
            for parent in self.parents.get(stack.pop(), ()):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen


def _referenced_labels(app: AppMigrations) -> set[str]:
    return {
        key[0] for f in app.files.values() for key in (*f.dependencies, *f.replaces, *f.run_before)
    }


def load(app_labels: Iterable[str] | None = None) -> DiskGraph:
    """Read the given apps (default: the managed apps) into a :class:`DiskGraph`.

    Every installed app their migrations reach (directly or through other apps) is read
    as context, so a dependency on a missing migration of, say, ``auth`` is an error here
    as it is in Django; a reference to an app that is not installed is one too.
    """
    from django.apps import apps as django_apps

    from migtools import project

    if app_labels is None:
        labels = [c.label for c in project.managed_apps()]
    else:
        labels = [project.app_config(label).label for label in app_labels]
    read = {label: read_app(label) for label in labels}
    context: dict[str, AppMigrations] = {}
    pending = sorted(set().union(*(_referenced_labels(a) for a in read.values())))
    while pending:
        label = pending.pop()
        if label in read or label in context or label not in django_apps.app_configs:
            continue
        context[label] = read_app(label)
        pending.extend(sorted(_referenced_labels(context[label])))
    # The same readings (read_directory's memo) in the same registry: the same graph.
    memo_key = (tuple(read), tuple(context), tuple(django_apps.app_configs))
    parts = (*read.values(), *context.values())
    known = _load_memo.get(memo_key)
    if (
        known is not None
        and len(known[0]) == len(parts)
        and all(_same_reading(a, b) for a, b in zip(known[0], parts, strict=True))
    ):
        return known[1]
    with paused_gc():
        graph = DiskGraph(read.values(), context.values(), strict=True)
    memoized = {id(r.app) for r in _read_memo.values()}
    if all(id(app) in memoized or _empty(app) for app in parts):
        if len(_load_memo) >= 8:  # the checks' graph, the verifier's, a few more
            _load_memo.clear()
        _load_memo[memo_key] = (parts, graph)
    return graph


_load_memo: dict[tuple[object, ...], tuple[tuple[AppMigrations, ...], DiskGraph]] = {}


def _empty(app: AppMigrations) -> bool:
    return not app.files and not app.warnings


def _same_reading(a: AppMigrations, b: AppMigrations) -> bool:
    """``b`` is the reading ``a`` was (the same memoized object, or both without files)."""
    if a is b:
        return True
    return _empty(a) and _empty(b) and (a.label, a.directory) == (b.label, b.directory)
