"""The one place that reads ``MIGTOOLS_*`` settings."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings

from migtools.errors import UnknownAppError

LOCKFILE_NAME = "migrations_lockfile.txt"
_THIRD_PARTY_DIRS = ("site-packages", "dist-packages")


def _get(name: str, default: Any) -> Any:
    return getattr(settings, f"MIGTOOLS_{name}", default)


def require_name() -> bool:
    return bool(_get("REQUIRE_NAME", True))


def main_branch() -> str | None:
    value = _get("MAIN_BRANCH", None)
    return str(value) if value else None


def migration_test_dirs() -> list[Path] | None:
    value = _get("MIGRATION_TEST_DIRS", None)
    return None if value is None else [Path(p) for p in value]


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
    labels = _get("APPS", None)
    if labels is not None:
        return sorted((app_config(label) for label in labels), key=lambda c: c.label)
    configs = [c for c in apps.get_app_configs() if not _is_third_party(c)]
    return sorted(configs, key=lambda c: c.label)


def _find_git_root(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return directory
    return None


@cache
def _settings_dir() -> Path:
    module = sys.modules.get(settings.SETTINGS_MODULE or "")
    if module is not None and getattr(module, "__file__", None):
        return Path(module.__file__).resolve().parent  # type: ignore[arg-type]
    return Path.cwd()


def project_root() -> Path:
    """The root of the git checkout holding the settings module, else the directory above
    the settings package."""
    settings_dir = _settings_dir()
    return _find_git_root(settings_dir) or settings_dir.parent


def lockfile_path() -> Path:
    configured = _get("LOCKFILE_PATH", None)
    if configured:
        return Path(configured)
    return project_root() / LOCKFILE_NAME
