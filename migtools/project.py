"""The project migtools works on: its root (the git checkout holding the settings), the
lockfile's place, the apps it manages, and its migration tests (found and read statically)."""

from __future__ import annotations

import ast as pyast
import os
from dataclasses import dataclass, field
from pathlib import Path

from django.apps import AppConfig, apps

from migtools import conf
from migtools import source as pysource
from migtools.errors import UnknownAppError
from migtools.pyproject import find_git_root

LOCKFILE_NAME = "migrations_lockfile.txt"
_THIRD_PARTY_DIRS = ("site-packages", "dist-packages")


def app_config(label: str) -> AppConfig:
    try:
        return apps.get_app_config(label)
    except LookupError:
        raise UnknownAppError(label) from None


def _is_third_party(config: AppConfig) -> bool:
    parts = Path(config.path).parts
    return any(part in _THIRD_PARTY_DIRS for part in parts)


def managed_apps() -> list[AppConfig]:
    """Apps whose migrations migtools manages, sorted by label.

    ``MIGTOOLS_APPS`` when set (unknown labels are an error), else every installed app whose
    code lives outside site-packages/dist-packages.
    """
    labels = conf.apps_setting()
    if labels is not None:
        return sorted((app_config(label) for label in labels), key=lambda c: c.label)
    configs = [c for c in apps.get_app_configs() if not _is_third_party(c)]
    return sorted(configs, key=lambda c: c.label)


def root() -> Path:
    """The root of the git checkout holding the settings module, else the directory above
    the settings package."""
    settings_dir = conf.settings_dir()
    return find_git_root(settings_dir) or settings_dir.parent


def lockfile_path() -> Path:
    configured = conf.lockfile_setting()
    if configured is not None:
        return configured
    return conf.base_dir() / LOCKFILE_NAME


TABLE_SIZES_NAME = "migrations_table_sizes.txt"


def table_sizes_path() -> Path:
    """``MIGTOOLS_TABLE_SIZES``, else ``migrations_table_sizes.txt`` beside the lockfile."""
    configured = conf.table_sizes_setting()
    if configured is not None:
        return configured
    return lockfile_path().with_name(TABLE_SIZES_NAME)


_SKIP_DIRS = {
    ".git",
    ".hg",
    ".venv",
    "venv",
    "env",
    "node_modules",
    "__pycache__",
    ".tox",
    ".nox",
    "site-packages",
    "dist-packages",
    "build",
    "dist",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "migrations",
}


def find_test_files(dirs: list[Path] | None, root: Path) -> list[Path]:
    """Python files that may hold migration tests: every ``.py`` file under ``dirs``
    (``MIGTOOLS_MIGRATION_TEST_DIRS``), else the project's test files (``test*.py``,
    ``*_test.py``, ``tests.py``, and anything in a ``tests``/``test`` directory)."""
    found: list[Path] = []
    if dirs is not None:
        for directory in dirs:
            directory = directory if directory.is_absolute() else root / directory
            if directory.is_file():
                found.append(directory)
                continue
            for dirpath, dirnames, filenames in os.walk(directory):
                dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.startswith(".")]
                found.extend(Path(dirpath) / f for f in filenames if f.endswith(".py"))
        return sorted(found)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.startswith(".")]
        in_tests = any(part in ("tests", "test") for part in Path(dirpath).relative_to(root).parts)
        for name in filenames:
            if not name.endswith(".py"):
                continue
            if (
                in_tests
                or name.startswith("test")
                or name.endswith("_test.py")
                or name == "tests.py"
            ):
                found.append(Path(dirpath) / name)
    return sorted(found)


def is_test_path(path: Path, dirs: list[Path] | None, root: Path) -> bool:
    """Whether ``path`` (existing or not) is where :func:`find_test_files` looks."""
    if path.suffix != ".py":
        return False
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return False
    if any(part in _SKIP_DIRS or part.startswith(".") for part in parts[:-1]):
        return False
    if dirs is not None:
        for directory in dirs:
            directory = (directory if directory.is_absolute() else root / directory).resolve()
            if path == directory or directory in path.parents:
                return True
        return False
    name = path.name
    return (
        any(part in ("tests", "test") for part in parts[:-1])
        or name.startswith("test")
        or name.endswith("_test.py")
        or name == "tests.py"
    )


@dataclass
class MigrationTests:
    """What the project's migration tests name: ``targets`` are the (app, migrate_to) pairs;
    ``multiple_methods`` maps a target to the tests with several ``test_*`` methods."""

    targets: set[tuple[str, str]] = field(default_factory=set)
    multiple_methods: dict[tuple[str, str], list[tuple[str, int, int]]] = field(
        default_factory=dict
    )


def _literal(node: pyast.expr) -> str | None:
    if isinstance(node, pyast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def read_migration_tests(files: list[Path], default_app: str | None = None) -> MigrationTests:
    """Classes assigning ``migrate_to`` (and ``app``) in the given files, read with ``ast``
    (never imported). A class without ``app`` inherits it from a base class in the same file,
    else ``default_app``."""
    out = MigrationTests()
    for path in files:
        try:
            source = pysource.read(path)
        except (OSError, SyntaxError):
            continue
        if "migrate_to" not in source:
            continue
        try:
            tree = pyast.parse(source)
        except SyntaxError:
            continue
        classes = {n.name: n for n in pyast.walk(tree) if isinstance(n, pyast.ClassDef)}

        def attrs(
            cls: pyast.ClassDef,
            classes: dict[str, pyast.ClassDef],
            seen: frozenset[str] = frozenset(),
        ) -> dict[str, str]:
            values: dict[str, str] = {}
            for base in cls.bases:
                if isinstance(base, pyast.Name) and base.id in classes and base.id not in seen:
                    values.update(attrs(classes[base.id], classes, seen | {cls.name}))
            for stmt in cls.body:
                if isinstance(stmt, pyast.Assign) and len(stmt.targets) == 1:
                    target = stmt.targets[0]
                    value = _literal(stmt.value)
                    if isinstance(target, pyast.Name) and value is not None:
                        values[target.id] = value
                elif (
                    isinstance(stmt, pyast.AnnAssign)
                    and isinstance(stmt.target, pyast.Name)
                    and stmt.value is not None
                ):
                    value = _literal(stmt.value)
                    if value is not None:
                        values[stmt.target.id] = value
            return values

        for cls in classes.values():
            values = attrs(cls, classes)
            migrate_to = values.get("migrate_to")
            app = values.get("app", default_app)
            if not migrate_to or not app:
                continue
            node = (app, migrate_to)
            out.targets.add(node)
            methods = [
                s
                for s in cls.body
                if isinstance(s, pyast.FunctionDef | pyast.AsyncFunctionDef)
                and s.name.startswith("test")
            ]
            if len(methods) > 1:
                out.multiple_methods.setdefault(node, []).append(
                    (str(path), cls.lineno, len(methods))
                )
    return out
