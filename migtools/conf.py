"""The one place that reads ``MIGTOOLS_*`` settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings


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


def apps_setting() -> list[str] | None:
    """``MIGTOOLS_APPS``: the managed app labels, or None (then: apps outside site-packages)."""
    value = _get("APPS", None)
    return None if value is None else list(value)


def lockfile_setting() -> Path | None:
    """``MIGTOOLS_LOCKFILE_PATH``, or None (then: at the project root)."""
    value = _get("LOCKFILE_PATH", None)
    return Path(value) if value else None


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


# -- Backfills -------------------------------------------------------------------------------

BACKFILL_RUNNERS = ("inline", "tasks")


def backfill_runner() -> str:
    """``MIGTOOLS_BACKFILL_RUNNER``: ``"inline"`` (default) or ``"tasks"`` (Django Tasks)."""
    value = _get("BACKFILL_RUNNER", "inline")
    if value not in BACKFILL_RUNNERS:
        from migtools.errors import UsageError

        raise UsageError(f"MIGTOOLS_BACKFILL_RUNNER must be 'inline' or 'tasks', not {value!r}.")
    return str(value)
