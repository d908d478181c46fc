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


def default_app() -> str | None:
    """``MIGTOOLS_DEFAULT_APP``: the ``app`` of ``TestMigrations`` classes that set none."""
    value = _get("DEFAULT_APP", None)
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


def rule_levels() -> dict[str, str]:
    """``MIGTOOLS_RULES``: ``{rule_id: "error" | "warning" | "off"}`` (validated in rules)."""
    return dict(_get("RULES", None) or {})


# -- Safety on apply -----------------------------------------------------------------------

DEFAULT_LOCK_TIMEOUT = "5s"
DEFAULT_STATEMENT_TIMEOUT = "5s"
DEFAULT_LOCK_RETRIES = 3
DEFAULT_LARGE_TABLE_ROWS = 1_000_000


def lock_timeout() -> str:
    """``MIGTOOLS_LOCK_TIMEOUT``: a PostgreSQL duration (``"5s"``, ``"500ms"``)."""
    return str(_get("LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT))


def statement_timeout(post_deployment: bool) -> str | None:
    """``MIGTOOLS_STATEMENT_TIMEOUT`` for pre-deploy migrations; None (no limit) for
    post-deployment ones, which are expected to be slow."""
    if post_deployment:
        return None
    value = _get("STATEMENT_TIMEOUT", DEFAULT_STATEMENT_TIMEOUT)
    return None if value in (None, "", 0, "0") else str(value)


def lock_retries() -> int:
    """``MIGTOOLS_LOCK_RETRIES``: how many times a lock timeout is retried before failing."""
    return max(0, int(_get("LOCK_RETRIES", DEFAULT_LOCK_RETRIES)))


def lock_retry_delay() -> float:
    """``MIGTOOLS_LOCK_RETRY_DELAY``: seconds before the first retry (doubled each time)."""
    return float(_get("LOCK_RETRY_DELAY", 0.5))


def large_tables() -> frozenset[str]:
    return frozenset(str(t) for t in _get("LARGE_TABLES", ()))


def large_table_rows() -> int:
    return int(_get("LARGE_TABLE_ROWS", DEFAULT_LARGE_TABLE_ROWS))


def historical_tables() -> dict[str, str]:
    """``MIGTOOLS_HISTORICAL_TABLES``: table -> database alias, for dropped models."""
    return {str(k): str(v) for k, v in dict(_get("HISTORICAL_TABLES", {})).items()}


def baseline() -> dict[str, str]:
    """``MIGTOOLS_BASELINE = {app: name}``: history up to and including that migration is
    left unchecked (adopting migtools in an existing project)."""
    return {str(k): str(v) for k, v in dict(_get("BASELINE", {})).items()}
