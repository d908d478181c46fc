"""What Django's migration loader (or migtools' import of a migration) refused, as one
:class:`~migtools.errors.MigrationFileError` naming the file and line.

Django raises a syntax error, an error on import, ``BadMigrationError`` (a module without a
``Migration`` class), ``NodeNotFoundError``, ``CircularDependencyError``,
``InconsistentMigrationHistory`` or a plain ``TypeError`` (``dependencies = None``) from deep in
``MigrationLoader``; :func:`diagnose` turns each into ``path:line: reason`` and leaves every
other exception alone (``None``). Commands map it in one place
(:class:`migtools.management.base.MigtoolsCommandMixin`).
"""

from __future__ import annotations

import ast
import os
import re
import sys
from pathlib import Path
from types import TracebackType

from migtools import source as pysource
from migtools.errors import MigrationFileError, MigtoolsError

_INCONSISTENT = re.compile(
    r"Migration (\S+?)\.(\S+) is applied before its dependency (\S+?)\.(\S+)"
)
_NODE_ORIGIN = re.compile(r"Migration (\S+?)\.(\S+) dependencies reference")
_NO_CLASS = re.compile(r"Migration (\S+) in app (\S+) has no Migration class")
# Where Django imports migration modules, and where migtools does (a file too dynamic to read).
_IMPORTERS = (
    (os.path.join("django", "db", "migrations", "loader.py"), "load_disk"),
    (os.path.join("migtools", "graph", "disk.py"), "_imported_file"),
    # The verifier's lazy loader imports the selected migrations itself.
    (os.path.join("migtools", "verifier", "select.py"), "realize"),
)
# Where Django builds the graph (not where it applies it: executor.py's errors are not ours).
_LOADER_FILES = tuple(
    os.path.join("django", "db", "migrations", f) for f in ("loader.py", "graph.py", "migration.py")
)


def shown(path: Path | str) -> str:
    """``path`` relative to the current directory when below it (as Django prints paths)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def migration_file(app_label: str, name: str) -> Path | None:
    """The file of migration ``app_label.name``, found as Django's loader finds it."""
    from migtools.graph.package import locate

    try:
        _module, directory = locate(app_label)
    except (LookupError, ImportError, ValueError):
        return None
    if directory is None:
        return None
    path = directory / f"{name}.py"
    return path if path.is_file() else None


Needle = tuple[str, str] | str | None


def line_of(path: Path, needle: Needle = None) -> int:
    """The line of the dependency ``needle`` (a key, or a migration name) in the file, else of
    its ``dependencies``, else of its ``Migration`` class, else 1."""
    try:
        tree = ast.parse(pysource.read(path))
    except (OSError, SyntaxError, ValueError):
        return 1
    if isinstance(needle, tuple):
        for node in ast.walk(tree):
            if isinstance(node, ast.Tuple | ast.List) and len(node.elts) == 2:
                parts = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
                if tuple(parts) == needle:
                    return node.lineno
        needle = needle[1]
    if needle is not None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value == needle:
                return node.lineno
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Migration":
            for stmt in node.body:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else []
                if isinstance(stmt, ast.AnnAssign):
                    targets = [stmt.target]
                if any(isinstance(t, ast.Name) and t.id == "dependencies" for t in targets):
                    return stmt.lineno
            return node.lineno
    return 1


def _at(app_label: str, name: str, reason: str, needle: Needle = None) -> MigrationFileError:
    path = migration_file(app_label, name)
    if path is None:
        return MigrationFileError(f"{app_label}.{name}", 1, reason)
    return MigrationFileError(shown(path), line_of(path, needle), reason)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def import_failure(exc: BaseException, tb: TracebackType | None) -> MigrationFileError | None:
    """An exception raised while a migration module was imported (``tb`` from the importing
    frame on): the file and line that raised it."""
    if isinstance(exc, SyntaxError) and exc.filename:
        reason = f"syntax error: {_one_line(exc.msg)}"
        return MigrationFileError(shown(exc.filename), exc.lineno or 1, reason)
    found: tuple[str, int] | None = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "<module>" and not code.co_filename.startswith("<"):
            found = (code.co_filename, tb.tb_lineno)
            break
        tb = tb.tb_next
    if found is None:
        return None
    reason = f"importing the migration raised {type(exc).__name__}: {_one_line(str(exc))}"
    return MigrationFileError(shown(found[0]), found[1], reason)


def _from_traceback(exc: BaseException) -> MigrationFileError | None:
    tb = exc.__traceback__
    frames: list[TracebackType] = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    for frame in frames:
        code = frame.tb_frame.f_code
        if any(code.co_filename.endswith(f) and code.co_name == n for f, n in _IMPORTERS):
            failure = import_failure(exc, frame.tb_next)
            if failure is not None:
                return failure
    for frame in reversed(frames):
        if frame.tb_frame.f_code.co_filename.endswith(_LOADER_FILES):
            key = _migration_key(frame)
            if key is not None:
                reason = (
                    f"Django's migration loader failed on {key[0]}.{key[1]}: "
                    f"{type(exc).__name__}: {_one_line(str(exc))} (dependencies, replaces and "
                    "run_before must be lists of (app_label, migration_name) pairs)"
                )
                return _at(key[0], key[1], reason)
    return None


def _migration_key(frame: TracebackType) -> tuple[str, str] | None:
    """The migration a frame of Django's loader was working on, from its local variables."""
    from django.db.migrations import Migration

    local = frame.tb_frame.f_locals
    migration = local.get("migration")
    if isinstance(migration, Migration):
        return migration.app_label, migration.name
    name = frame.tb_frame.f_code.co_name
    if name == "__init__" and isinstance(local.get("self"), Migration):
        label, migration_name = local.get("app_label"), local.get("name")
    elif name == "load_disk":
        label = getattr(local.get("app_config"), "label", None)
        migration_name = local.get("migration_name")
    else:
        return None
    if isinstance(label, str) and isinstance(migration_name, str):
        return label, migration_name
    return None


def diagnose(exc: BaseException) -> MigrationFileError | None:
    """``exc`` as one ``path:line: reason`` error, when Django's loader raised it."""
    if isinstance(exc, MigtoolsError) or "django.db.migrations" not in sys.modules:
        return None
    from django.db.migrations.exceptions import (
        BadMigrationError,
        CircularDependencyError,
        InconsistentMigrationHistory,
        NodeNotFoundError,
    )

    message = _one_line(str(exc))
    if isinstance(exc, InconsistentMigrationHistory):
        match = _INCONSISTENT.search(message)
        if match is not None:
            hint = (
                f" Apply {match[3]}.{match[4]} first (or record it with 'manage.py migrate "
                f"{match[3]} {match[4]} --fake' if its changes are already in the database)."
            )
            return _at(match[1], match[2], message + hint, needle=(match[3], match[4]))
    if isinstance(exc, NodeNotFoundError):
        origin = exc.origin
        key = getattr(origin, "app_label", None), getattr(origin, "name", None)
        match = _NODE_ORIGIN.search(message)
        if key[0] is None and match is not None:
            key = match[1], match[2]
        node = exc.node if isinstance(exc.node, tuple) and len(exc.node) == 2 else None
        if isinstance(key[0], str) and isinstance(key[1], str):
            return _at(key[0], key[1], message, needle=node)
    if isinstance(exc, CircularDependencyError):
        nodes = [part.strip().split(".", 1) for part in message.split(",")]
        nodes = [n for n in nodes if len(n) == 2]
        if nodes:
            needle = (nodes[1][0], nodes[1][1]) if len(nodes) > 1 else None
            return _at(nodes[0][0], nodes[0][1], f"Cycle in the migration graph: {message}", needle)
    if isinstance(exc, BadMigrationError):
        match = _NO_CLASS.search(message)
        if match is not None:
            hint = (
                " (Django's loader imports every module of a migrations package; start a "
                "helper module's name with '_' to keep it there)"
            )
            return _at(match[2], match[1], message + hint)
    return _from_traceback(exc)
