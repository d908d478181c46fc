"""The one place that reads and validates ``MIGTOOLS_*`` settings.

Every accessor validates what it reads and raises :class:`~migtools.errors.SettingsError` on a
value it would otherwise misread; :func:`validate` runs every validator at once for the system
check (``migtools.checks``: ids ``migtools.E1xx``), so a bad setting stops ``migrate``,
``makemigrations`` or ``verify_migrations`` before their first SQL statement. The table of
settings, their types, defaults and check ids is :data:`SETTINGS`; ``docs/settings.md`` shows it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings

from migtools import pyproject
from migtools.errors import SettingsError


@cache
def settings_dir() -> Path:
    """The directory of the settings module (the current directory when it has no file)."""
    import sys

    module = sys.modules.get(settings.SETTINGS_MODULE or "")
    if module is not None and getattr(module, "__file__", None):
        return Path(module.__file__).resolve().parent  # type: ignore[arg-type]
    return Path.cwd()


@cache
def _project() -> tuple[Path, Mapping[str, Any], Path | None]:
    start = settings_dir()
    git_root = pyproject.find_git_root(start)
    top = git_root or start.parent  # outside git: no higher than the directory above
    table, source = pyproject.find(start, top)
    base = source.parent if source is not None else top
    return base, table, source


def base_dir() -> Path:
    """Where relative path settings resolve and the default files sit: the directory of the
    ``pyproject.toml`` holding ``[tool.migtools]`` nearest the settings module (up to the git
    root), else the git root, else the directory above the settings package. The CLI
    follows the same rule (``migtools.pyproject``)."""
    return _project()[0]


def _pyproject_value(key: str) -> Any:
    """``[tool.migtools] key`` of the project's ``pyproject.toml`` (read when a setting is
    unset, so both tools share one configuration), as a setting value: paths resolved."""
    _base, table, source = _project()
    value = table.get(key)
    if value is None or source is None:
        return None
    if isinstance(value, str) and value:
        return pyproject.resolve(value, source.parent)
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return [pyproject.resolve(v, source.parent) for v in value]
    raise SettingsError(
        f"[tool.migtools] {key} ({source})",
        value,
        "expected a path string" if key != "migration_test_dirs" else "expected a list of paths",
        "Fix it in pyproject.toml.",
        "migtools.E100",
    )


def _raw(name: str, default: Any) -> Any:
    return getattr(settings, f"MIGTOOLS_{name}", default)


def _error(name: str, value: Any, problem: str, hint: str) -> SettingsError:
    return SettingsError(f"MIGTOOLS_{name}", value, problem, hint, check_id(name))


# -- Value kinds (each written once) -------------------------------------------------------

# PostgreSQL's time units for duration settings (``SET lock_timeout = '5s'``), in ms.
_UNITS_MS = {
    "us": 0.001,
    "ms": 1.0,
    "s": 1000.0,
    "min": 60_000.0,
    "h": 3_600_000.0,
    "d": 86_400_000.0,
}
# A non-negative number as PostgreSQL reads one (``strtod``: "5", "0.5", ".5", "5.", "1e3").
_NUM = r"(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
_DURATION = re.compile(rf"^\s*{_NUM}\s*(us|ms|s|min|h|d)\s*$")
_NUMBER = re.compile(rf"^\s*{_NUM}\s*$")
# The largest lock_timeout / statement_timeout PostgreSQL takes (INT_MAX ms, ~24.8 days).
PG_TIMEOUT_MAX_MS = 2_147_483_647
_DURATION_HINT = (
    'Write a PostgreSQL duration string with its unit, e.g. "5s", "500ms", "2min" or "0.5s"'
)


def duration_ms(name: str, value: Any, *, none_ok: bool, pg_timeout: bool = False) -> float | None:
    """Milliseconds of a duration setting (the one duration parser of migtools); ``None`` only
    where it means "no limit". ``pg_timeout``: the value is set as PostgreSQL's
    ``lock_timeout``/``statement_timeout``, which refuse more than INT_MAX milliseconds."""
    if value is None:
        if none_ok:
            return None
        raise _error(name, value, "None is not a duration", f"{_DURATION_HINT}.")
    if isinstance(value, (bool, int, float)):
        raise _error(
            name,
            value,
            "a bare number is ambiguous (PostgreSQL would read it as milliseconds)",
            f'{_DURATION_HINT}: "{value}ms" or "{value}s".',
        )
    if not isinstance(value, str):
        raise _error(
            name, value, f"expected a string, not {type(value).__name__}", f"{_DURATION_HINT}."
        )
    match = _DURATION.match(value)
    if match is None and _NUMBER.match(value):
        match = _NUMBER.match(value)
        assert match is not None
        if float(match.group(1)) != 0:
            raise _error(
                name,
                value,
                "a number without a unit is ambiguous (PostgreSQL would read it as milliseconds)",
                f'{_DURATION_HINT}: "{value.strip()}ms" or "{value.strip()}s".',
            )
        match = _DURATION.match(f"{value.strip()}ms")
    if match is None:
        raise _error(
            name,
            value,
            "not a PostgreSQL duration (a non-negative number and one of the units us, ms, s, "
            "min, h, d)",
            f"{_DURATION_HINT}.",
        )
    ms = float(match.group(1)) * _UNITS_MS[match.group(2)]
    if ms == 0:
        off = f"MIGTOOLS_{name} = None" if none_ok else "a positive duration"
        raise _error(
            name,
            value,
            "zero turns the limit off silently",
            f"Say so explicitly with {off}, or give a positive duration."
            if none_ok
            else f"Give {off}.",
        )
    if ms < 1:
        raise _error(
            name,
            value,
            "below one millisecond, which PostgreSQL rounds to 0 (no limit)",
            'Give at least "1ms".',
        )
    if pg_timeout and round(ms) > PG_TIMEOUT_MAX_MS:
        raise _error(
            name,
            value,
            f"above PostgreSQL's limit for a timeout ({PG_TIMEOUT_MAX_MS}ms, about 24.8 days)",
            'Give at most "24d"' + (", or None for no limit." if none_ok else "."),
        )
    return ms


def _count(name: str, value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _error(
            name, value, "expected a whole number", f"Write e.g. MIGTOOLS_{name} = {default}."
        )
    if value < 0:
        raise _error(
            name, value, "must not be negative", f"Write e.g. MIGTOOLS_{name} = {default}."
        )
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _error(
            name, value, "expected True or False", f"Write MIGTOOLS_{name} = True or False."
        )
    return value


def _text(name: str, value: Any, example: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _error(
            name,
            value,
            "expected a non-empty string or None",
            f'Write e.g. MIGTOOLS_{name} = "{example}".',
        )
    return value


def _strings(name: str, value: Any, example: str) -> list[str]:
    """A list (or tuple or set) of strings: a bare string is not read letter by letter."""
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        shown = f'["{value}"]' if isinstance(value, str) else f'["{example}"]'
        raise _error(
            name,
            value,
            f"expected a list of strings, not {type(value).__name__}",
            f"Write e.g. MIGTOOLS_{name} = {shown}.",
        )
    bad = [item for item in value if not isinstance(item, str) or not item]
    if bad:
        raise _error(
            name,
            value,
            f"every item must be a non-empty string, not {bad[0]!r}",
            f'Write e.g. MIGTOOLS_{name} = ["{example}"].',
        )
    return sorted(value) if isinstance(value, (set, frozenset)) else list(value)


def _mapping(name: str, value: Any, example: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _error(
            name,
            value,
            f"expected a dict, not {type(value).__name__}",
            f"Write e.g. MIGTOOLS_{name} = {example}.",
        )
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str) or not key or not item:
            raise _error(
                name,
                value,
                f"keys and values must be non-empty strings, not {key!r}: {item!r}",
                f"Write e.g. MIGTOOLS_{name} = {example}.",
            )
    return dict(value)


def _app_label(name: str, value: str, whole: Any) -> str:
    from django.apps import apps

    if value not in apps.app_configs:
        raise _error(
            name,
            whole,
            f"No installed app with label '{value}'",
            "Use app labels (the last part of the app's name, or its AppConfig.label) from "
            "INSTALLED_APPS.",
        )
    return value


# -- Authoring, lockfile, renamer ----------------------------------------------------------


def require_name() -> bool:
    return _flag("REQUIRE_NAME", _raw("REQUIRE_NAME", True))


def main_branch() -> str | None:
    return _text("MAIN_BRANCH", _raw("MAIN_BRANCH", None), "main")


def default_app() -> str | None:
    """``MIGTOOLS_DEFAULT_APP``: the ``app`` of ``TestMigrations`` classes that set none."""
    value = _text("DEFAULT_APP", _raw("DEFAULT_APP", None), "shop")
    return None if value is None else _app_label("DEFAULT_APP", value, value)


def fast_paths() -> bool:
    """``MIGTOOLS_FAST_PATHS`` (default True): the verifier's in-place state updates and the
    migration tests' walk back (private Django API, each fenced in one module); False falls
    back to Django's own paths (slower, same results)."""
    return _flag("FAST_PATHS", _raw("FAST_PATHS", True))


def test_templates() -> bool:
    """``MIGTOOLS_TEST_TEMPLATES`` (default True): test databases are cloned from a PostgreSQL
    template keyed by the migrations' content (``migtools.testing.template``); False: Django's
    own creation (every migration replayed)."""
    return _flag("TEST_TEMPLATES", _raw("TEST_TEMPLATES", True))


def migration_test_dirs() -> list[Path] | None:
    """``MIGTOOLS_MIGRATION_TEST_DIRS`` (relative: to :func:`base_dir`), else ``[tool.migtools]
    migration_test_dirs``, else None."""
    value = _raw("MIGRATION_TEST_DIRS", None)
    if value is None:
        value = _pyproject_value("migration_test_dirs")
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        raise _error(
            "MIGRATION_TEST_DIRS",
            value,
            "expected a list of directories, not one path",
            f"Write MIGTOOLS_MIGRATION_TEST_DIRS = [{os.fspath(value)!r}].",
        )
    if not isinstance(value, (list, tuple)):
        raise _error(
            "MIGRATION_TEST_DIRS",
            value,
            f"expected a list of directories, not {type(value).__name__}",
            'Write e.g. MIGTOOLS_MIGRATION_TEST_DIRS = [BASE_DIR / "tests"].',
        )
    dirs = []
    for item in value:
        if not isinstance(item, (str, os.PathLike)) or not (
            pyproject.resolve(item, base_dir()).is_dir()
        ):
            raise _error(
                "MIGRATION_TEST_DIRS",
                value,
                f"{item!r} is not an existing directory",
                "List directories that exist (absolute paths, e.g. BASE_DIR / 'tests').",
            )
        dirs.append(pyproject.resolve(item, base_dir()))
    return dirs


def apps_setting() -> list[str] | None:
    """``MIGTOOLS_APPS``: the managed app labels, or None (then: apps outside site-packages)."""
    value = _raw("APPS", None)
    if value is None:
        return None
    labels = _strings("APPS", value, "shop")
    for label in labels:
        _app_label("APPS", label, value)
    return labels


def _file_path(name: str, example: str, key: str) -> Path | None:
    """A path setting naming a file (relative: to :func:`base_dir`), else ``[tool.migtools]
    key``, else None. Its directory must exist: a typo must not create a file somewhere
    else on disk."""
    value = _raw(name, None)
    if value is None:
        value = _pyproject_value(key)
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise _error(
            name, value, "expected a path", f'Write e.g. MIGTOOLS_{name} = BASE_DIR / "{example}".'
        )
    path = pyproject.resolve(value, base_dir())
    if path.is_dir():
        raise _error(name, value, "is a directory", f"Name the file, e.g. {str(path / example)!r}.")
    if not path.parent.is_dir():
        raise _error(
            name,
            value,
            f"its directory {str(path.parent)!r} does not exist",
            f"Fix the path (an absolute path, e.g. BASE_DIR / '{example}') or create the "
            "directory.",
        )
    return path


def lockfile_setting() -> Path | None:
    """``MIGTOOLS_LOCKFILE_PATH``, or None (then: at the project root)."""
    return _file_path("LOCKFILE_PATH", "migrations_lockfile.txt", "lockfile")


def table_sizes_setting() -> Path | None:
    """``MIGTOOLS_TABLE_SIZES``: the recorded table sizes file, or None (then: beside the
    lockfile, ``migtools.rules.sizes``)."""
    return _file_path("TABLE_SIZES", "migrations_table_sizes.txt", "table_sizes")


def rule_levels() -> dict[str, str]:
    """``MIGTOOLS_RULES``: ``{rule_id: "error" | "warning" | "off"}`` (the ids and levels are
    checked against the catalogue by ``migtools.checks`` and ``rules.catalogue``)."""
    value = _raw("RULES", None)
    if value is None:
        return {}
    return _mapping("RULES", value, '{"add-field-default": "warning"}')


# -- Safety on apply -----------------------------------------------------------------------

DEFAULT_LOCK_TIMEOUT = "2s"
DEFAULT_STATEMENT_TIMEOUT = "5s"
DEFAULT_LOCK_RETRIES = 3
DEFAULT_LOCK_RETRY_DELAY = "500ms"
DEFAULT_LOCK_RETRY_MAX = "30s"
DEFAULT_LARGE_TABLE_ROWS = 1_000_000


def lock_timeout() -> str:
    """``MIGTOOLS_LOCK_TIMEOUT``: a PostgreSQL duration (``"5s"``, ``"500ms"``); ``None``
    says "no timeout" explicitly (PostgreSQL's ``0``)."""
    value = _raw("LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT)
    if duration_ms("LOCK_TIMEOUT", value, none_ok=True, pg_timeout=True) is None:
        return "0"
    return str(value).strip()


def lock_timeout_seconds() -> float:
    """``MIGTOOLS_LOCK_TIMEOUT`` in seconds; 0.0 for no timeout."""
    ms = duration_ms(
        "LOCK_TIMEOUT", _raw("LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT), none_ok=True, pg_timeout=True
    )
    return 0.0 if ms is None else ms / 1000


def statement_timeout(post_deployment: bool) -> str | None:
    """``MIGTOOLS_STATEMENT_TIMEOUT`` for pre-deploy migrations; None (no limit) for
    post-deployment ones, which are expected to be slow, and when the setting is None.

    It must be above ``MIGTOOLS_LOCK_TIMEOUT``: PostgreSQL counts a statement's wait for its
    lock in its statement_timeout, so a statement_timeout at or below the lock_timeout
    cancels a statement that waits for a lock as if it ran long, and it is neither retried
    nor reported as the lock wait it is."""
    value = _raw("STATEMENT_TIMEOUT", DEFAULT_STATEMENT_TIMEOUT)
    ms = duration_ms("STATEMENT_TIMEOUT", value, none_ok=True, pg_timeout=True)
    if ms is None:
        return None
    _above_lock_timeout(value, ms)
    if post_deployment:
        return None
    return str(value).strip()


def _above_lock_timeout(value: Any, ms: float) -> None:
    lock_value = _raw("LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT)
    try:
        lock_ms = duration_ms("LOCK_TIMEOUT", lock_value, none_ok=True, pg_timeout=True)
    except SettingsError:
        return  # migtools.E101 says what is wrong with it
    if lock_ms is not None and ms > lock_ms:
        return
    lock = "None (no lock timeout)" if lock_ms is None else repr(str(lock_value).strip())
    raise _error(
        "STATEMENT_TIMEOUT",
        value,
        f"not above MIGTOOLS_LOCK_TIMEOUT = {lock}: PostgreSQL counts the wait for a lock in "
        "statement_timeout, so a statement waiting for a lock would be cancelled as a slow "
        "statement instead of being retried as a lock wait",
        f'Give a lock timeout below it (e.g. MIGTOOLS_LOCK_TIMEOUT = "{_below(ms)}"), a '
        "longer statement timeout, or MIGTOOLS_STATEMENT_TIMEOUT = None.",
    )


def _below(ms: float) -> str:
    """A round lock timeout below ``ms`` milliseconds (the check's hint)."""
    half = max(1, int(ms // 2))
    return f"{half / 1000:g}s" if half >= 1000 else f"{half}ms"


def lock_retries() -> int:
    """``MIGTOOLS_LOCK_RETRIES``: how many times a lock timeout is retried before failing."""
    return _count("LOCK_RETRIES", _raw("LOCK_RETRIES", DEFAULT_LOCK_RETRIES), DEFAULT_LOCK_RETRIES)


def lock_retry_delay() -> float:
    """``MIGTOOLS_LOCK_RETRY_DELAY``: a duration (``"500ms"``) before the first retry, in
    seconds (doubled each time); ``None``: retry at once."""
    ms = duration_ms(
        "LOCK_RETRY_DELAY", _raw("LOCK_RETRY_DELAY", DEFAULT_LOCK_RETRY_DELAY), none_ok=True
    )
    return 0.0 if ms is None else ms / 1000


def lock_retry_max() -> str:
    """``MIGTOOLS_LOCK_RETRY_MAX``: a PostgreSQL duration, the most time lock-timeout retries
    of one step may spend waiting (for locks and between attempts) before giving up; ``None``:
    no cap (``"0"``)."""
    value = _raw("LOCK_RETRY_MAX", DEFAULT_LOCK_RETRY_MAX)
    if duration_ms("LOCK_RETRY_MAX", value, none_ok=True) is None:
        return "0"
    return str(value).strip()


def lock_retry_max_seconds() -> float:
    """``MIGTOOLS_LOCK_RETRY_MAX`` in seconds; 0.0 for no cap."""
    ms = duration_ms("LOCK_RETRY_MAX", _raw("LOCK_RETRY_MAX", DEFAULT_LOCK_RETRY_MAX), none_ok=True)
    return 0.0 if ms is None else ms / 1000


def large_tables() -> frozenset[str]:
    return frozenset(_strings("LARGE_TABLES", _raw("LARGE_TABLES", ()), "shop_order"))


def large_table_rows() -> int:
    return _count(
        "LARGE_TABLE_ROWS",
        _raw("LARGE_TABLE_ROWS", DEFAULT_LARGE_TABLE_ROWS),
        DEFAULT_LARGE_TABLE_ROWS,
    )


def historical_tables() -> dict[str, str]:
    """``MIGTOOLS_HISTORICAL_TABLES``: table -> database alias, for dropped models."""
    from django.db import connections

    value = _mapping(
        "HISTORICAL_TABLES", _raw("HISTORICAL_TABLES", {}), '{"shop_oldmodel": "default"}'
    )
    for table, alias in value.items():
        if alias not in connections.databases:
            raise _error(
                "HISTORICAL_TABLES",
                value,
                f"table {table!r} names the database alias {alias!r}, which DATABASES does not define",
                f"Use one of: {', '.join(sorted(connections.databases)) or 'none'}.",
            )
    return value


def baseline() -> dict[str, str]:
    """``MIGTOOLS_BASELINE = {app: name}``: history up to and including that migration is
    left unchecked (adopting migtools in an existing project). That the migration exists is
    checked by ``migtools.checks``."""
    value = _mapping("BASELINE", _raw("BASELINE", {}), '{"shop": "0042_last_unchecked"}')
    for label in value:
        _app_label("BASELINE", label, value)
    return value


def pg_version() -> int | None:
    """``MIGTOOLS_PG_VERSION``: the PostgreSQL major version (``15``) assumed when the
    verifier runs without a database; None: the oldest one the installed Django supports."""
    value = _raw("PG_VERSION", None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 9 <= value <= 99:
        raise _error(
            "PG_VERSION",
            value,
            "expected PostgreSQL's major version as a whole number",
            "Write e.g. MIGTOOLS_PG_VERSION = 15.",
        )
    return value


BACKFILL_RUNNERS = ("inline", "tasks")


def backfill_runner() -> str:
    """``MIGTOOLS_BACKFILL_RUNNER``: ``"inline"`` (default) or ``"tasks"`` (Django Tasks)."""
    value = _raw("BACKFILL_RUNNER", "inline")
    if value not in BACKFILL_RUNNERS:
        raise _error(
            "BACKFILL_RUNNER",
            value,
            "expected 'inline' or 'tasks'",
            'Write MIGTOOLS_BACKFILL_RUNNER = "inline" (in the migrate process) or "tasks".',
        )
    return str(value)


DEFAULT_BACKFILL_LEASE = "60s"


def backfill_lease() -> float:
    """``MIGTOOLS_BACKFILL_LEASE``: a duration (``"60s"``), how long a tasks worker holds a
    backfill range without renewing it (it renews every third of it while it runs); a range
    whose worker died is re-enqueued once its lease expired. In seconds."""
    value = _raw("BACKFILL_LEASE", DEFAULT_BACKFILL_LEASE)
    ms = duration_ms("BACKFILL_LEASE", value, none_ok=False)
    if ms is None or ms < 1000:
        raise _error(
            "BACKFILL_LEASE",
            value,
            "expected a duration of at least 1s",
            'Write e.g. MIGTOOLS_BACKFILL_LEASE = "60s".',
        )
    return ms / 1000


# -- The table -----------------------------------------------------------------------------

#: name (without ``MIGTOOLS_``) -> (check id, validator). One line per setting.
SETTINGS: dict[str, tuple[str, Callable[[], object]]] = {
    "LOCK_TIMEOUT": ("migtools.E101", lock_timeout),
    "STATEMENT_TIMEOUT": ("migtools.E102", lambda: statement_timeout(False)),
    "LOCK_RETRIES": ("migtools.E103", lock_retries),
    "LOCK_RETRY_DELAY": ("migtools.E104", lock_retry_delay),
    "LOCK_RETRY_MAX": ("migtools.E105", lock_retry_max),
    "LARGE_TABLE_ROWS": ("migtools.E106", large_table_rows),
    "LARGE_TABLES": ("migtools.E107", large_tables),
    "APPS": ("migtools.E108", apps_setting),
    "LOCKFILE_PATH": ("migtools.E109", lockfile_setting),
    "RULES": ("migtools.E110", rule_levels),
    "BASELINE": ("migtools.E111", baseline),
    "HISTORICAL_TABLES": ("migtools.E112", historical_tables),
    "MIGRATION_TEST_DIRS": ("migtools.E113", migration_test_dirs),
    "REQUIRE_NAME": ("migtools.E114", require_name),
    "MAIN_BRANCH": ("migtools.E115", main_branch),
    "DEFAULT_APP": ("migtools.E116", default_app),
    "PG_VERSION": ("migtools.E117", pg_version),
    "FAST_PATHS": ("migtools.E118", fast_paths),
    "BACKFILL_RUNNER": ("migtools.E119", backfill_runner),
    "BACKFILL_LEASE": ("migtools.E120", backfill_lease),
    "TEST_TEMPLATES": ("migtools.E121", test_templates),
    "TABLE_SIZES": ("migtools.E122", table_sizes_setting),
}

#: Settings read elsewhere (by name) that the unknown-name warning must not flag.
OTHER_SETTINGS = frozenset({"GRAPH_CACHE", "STATE_CACHE"})


def check_id(name: str) -> str:
    entry = SETTINGS.get(name)
    return entry[0] if entry else "migtools.E100"


def validate() -> list[SettingsError]:
    """Every ``MIGTOOLS_*`` setting read and validated: the errors, all at once."""
    errors = []
    for _id, validator in SETTINGS.values():
        try:
            validator()
        except SettingsError as exc:
            errors.append(exc)
    return errors


def unknown_names() -> list[str]:
    """``MIGTOOLS_*`` names in settings that migtools does not read (typos)."""
    known = set(SETTINGS) | OTHER_SETTINGS
    return sorted(
        name
        for name in dir(settings)
        if name.startswith("MIGTOOLS_") and name.removeprefix("MIGTOOLS_") not in known
    )
