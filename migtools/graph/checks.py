"""System checks (``manage.py check``), ids ``migtools.W00x``.

All are Warnings: an Error would block ``migrate`` in a production image that ships without the
lockfile, and would block ``update_migration``, the cure for a conflict.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.core.management import get_commands

from migtools import project
from migtools import source as pysource
from migtools.errors import LockfileConflictError, LockfileError, MigtoolsError, SettingsError
from migtools.graph import disk as graph
from migtools.graph import lockfile

TAG = "migtools"
HINT_UPDATE = "Run 'python manage.py update_migration'."
HINT_WRITE = "Run 'python manage.py migrations_lockfile' (or makemigrations) and commit the file."
# Commands migtools provides that another app could shadow.
COMMANDS = ("makemigrations", "migrations_lockfile", "squashmigrations", "update_migration")


# True while a migtools command runs: the command reads the graph itself and reports a file
# Django's loader refuses as its own one-line error, so the check does not print it first.
_reported_by_command = False


@contextmanager
def graph_errors_reported_by_command() -> Iterator[None]:
    global _reported_by_command
    previous, _reported_by_command = _reported_by_command, True
    try:
        yield
    finally:
        _reported_by_command = previous


# True while ``makemigrations --check`` runs: it reports a stale lockfile itself (exit 2),
# so the check does not report the same fact first.
_lockfile_reported_by_command = False


@contextmanager
def lockfile_reported_by_command() -> Iterator[None]:
    global _lockfile_reported_by_command
    previous, _lockfile_reported_by_command = _lockfile_reported_by_command, True
    try:
        yield
    finally:
        _lockfile_reported_by_command = previous


def register() -> None:
    checks.register(check_lockfile, TAG)
    checks.register(check_model_modules, TAG)
    checks.register(check_command_order, TAG)


def check_lockfile(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if _lockfile_reported_by_command:
        return []
    try:
        disk = graph.load()
    except SettingsError:
        return []  # reported by the settings check (migtools.E1xx)
    except MigtoolsError as exc:
        if _reported_by_command:
            return []
        return [checks.Warning(f"Cannot read the migration graph: {exc}", id="migtools.W007")]
    messages: list[checks.CheckMessage] = [
        checks.Warning(
            w,
            hint="Use literal dependencies so migtools can read the file without importing it.",
            id="migtools.W007",
        )
        for w in disk.warnings
    ]
    conflicts = disk.conflicts()
    for label, leaves in conflicts.items():
        messages.append(
            checks.Warning(
                f"App '{label}' has several leaf migrations: {', '.join(leaves)}.",
                hint=HINT_UPDATE,
                id="migtools.W004",
            )
        )
    try:
        path = project.lockfile_path()
    except SettingsError:
        return messages  # reported by the settings check (migtools.E109)
    try:
        actual = lockfile.existing(path, lockfile.directories(disk)).entries
    except LockfileConflictError:
        messages.append(
            checks.Warning(
                f"{path} holds git conflict markers.", hint=HINT_UPDATE, id="migtools.W003"
            )
        )
        return messages
    except LockfileError as exc:
        missing = not path.exists()
        if missing and not any(disk.nodes(label) for label in disk.apps):
            return messages  # nothing to lock yet
        messages.append(
            checks.Warning(
                f"No lockfile at {path}." if missing else str(exc),
                hint=HINT_WRITE,
                id="migtools.W001" if missing else "migtools.W002",
            )
        )
        return messages
    if conflicts:
        return messages
    for mismatch in lockfile.compare(actual, lockfile.expected(disk)):
        messages.append(
            checks.Warning(
                f"Lockfile is stale: {mismatch.describe()}.", hint=HINT_WRITE, id="migtools.W002"
            )
        )
    return messages


def _defines_models(path: Path) -> bool:
    try:
        tree = ast.parse(pysource.read(path))
    except (OSError, SyntaxError):
        return False
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
                if name == "Model":
                    return True
    return False


def _unimported_model_modules(config: AppConfig) -> list[Path]:
    package = Path(config.path) / "models"
    if not (package / "__init__.py").is_file():
        return []
    result = []
    for path in sorted(package.glob("*.py")):
        if path.name == "__init__.py":
            continue
        module = f"{config.name}.models.{path.stem}"
        if module not in sys.modules and _defines_models(path):
            result.append(path)
    return result


def check_model_modules(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A module in an app's ``models/`` package that defines models but that nothing imports:
    makemigrations would silently miss its models."""
    messages: list[checks.CheckMessage] = []
    try:
        configs = project.managed_apps()
    except SettingsError:
        return []  # reported by the settings check (migtools.E108)
    for config in configs:
        for path in _unimported_model_modules(config):
            messages.append(
                checks.Warning(
                    f"{path} defines models but is not imported by "
                    f"{config.name}.models: makemigrations will not see them.",
                    hint=f"Import it in {path.parent / '__init__.py'}.",
                    obj=config.label,
                    id="migtools.W005",
                )
            )
    return messages


def check_command_order(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Django runs the command of the first app listed in INSTALLED_APPS."""
    owners = get_commands()
    return [
        checks.Warning(
            f"The '{name}' command of app '{owners[name]}' shadows migtools' own.",
            hint="List 'migtools' above that app in INSTALLED_APPS.",
            id="migtools.W006",
        )
        for name in COMMANDS
        if owners.get(name) not in (None, "migtools")
    ]
