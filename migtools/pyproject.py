"""The one base directory rule for path settings, shared by ``manage.py`` and the ``migtools`` CLI.

**The project directory** is the directory of the ``pyproject.toml`` holding ``[tool.migtools]``:
the one named by ``migtools --config PATH``, else the nearest one from a start directory up to
the git root (the start: the current directory for the CLI, the settings module's directory
for ``manage.py``); without one, the git root (``manage.py`` outside git: the directory above
the settings package).

Every relative path, whether written in settings (``MIGTOOLS_LOCKFILE_PATH``,
``MIGTOOLS_TABLE_SIZES``, ``MIGTOOLS_MIGRATION_TEST_DIRS``) or in ``[tool.migtools]``
(``lockfile``, ``migration_test_dirs``), resolves against it, and the default files (the
lockfile, the baseline and the table sizes beside it) sit in it. So in a monorepo with
``backend/pyproject.toml`` both tools name ``backend/migrations_lockfile.txt``, wherever they are
run from. ``manage.py`` also reads ``lockfile`` and ``migration_test_dirs`` from that table when
the matching setting is unset (a setting wins).

Imports nothing from Django: the CLI's ``lockfile`` stays free of it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from migtools.errors import UsageError

FILE_NAME = "pyproject.toml"


class ConfigError(UsageError):
    """``[tool.migtools]`` is malformed, or the repository's apps are ambiguous."""


def read_table(path: Path) -> Mapping[str, Any] | None:
    """``[tool.migtools]`` of the ``pyproject.toml`` at ``path``, or None when it has none."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}).") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc}).") from None
    found = data.get("tool", {}).get("migtools")
    if found is not None and not isinstance(found, dict):
        raise ConfigError(f"{path}: [tool.migtools] must be a table.")
    return found


def find(start: Path, stop: Path | None) -> tuple[Mapping[str, Any], Path | None]:
    """The nearest ``[tool.migtools]`` from ``start`` up to ``stop`` (included; None: the
    filesystem root), and the ``pyproject.toml`` holding it; ``({}, None)`` when none."""
    for directory in (start, *start.parents):
        candidate = directory / FILE_NAME
        if candidate.is_file():
            table = read_table(candidate)
            if table is not None:
                return table, candidate
        if directory == stop:
            break
    return {}, None


def named(config: str | os.PathLike[str]) -> tuple[Mapping[str, Any], Path]:
    """The table of ``--config PATH`` (a ``pyproject.toml``, or the directory holding one)."""
    path = Path(config).resolve()
    if path.is_dir():
        path = path / FILE_NAME
    if not path.is_file():
        raise ConfigError(f"--config {config}: no such file.")
    table = read_table(path)
    if table is None:
        raise ConfigError(f"--config {config}: {path} has no [tool.migtools] table.")
    return table, path


def find_git_root(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return directory
    return None


def resolve(value: str | os.PathLike[str], base: Path) -> Path:
    """``value`` as an absolute path: relative paths are relative to ``base``."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
