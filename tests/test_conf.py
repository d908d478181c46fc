"""``migtools.conf``: every setting read as documented or refused, never misread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from migtools import conf
from migtools.errors import SettingsError


def _refused(name: str, value: Any, accessor: Any) -> SettingsError:
    with override_settings(**{f"MIGTOOLS_{name}": value}), pytest.raises(SettingsError) as info:
        accessor()
    return info.value


# -- Durations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5s", "5s"),
        ("500ms", "500ms"),
        ("2min", "2min"),
        ("0.5s", "0.5s"),
        (".5s", ".5s"),
        ("5.s", "5.s"),
        ("1e3ms", "1e3ms"),
        ("1h", "1h"),
        (" 5s", "5s"),
        ("24d", "24d"),
        ("2147483647ms", "2147483647ms"),
    ],
)
def test_lock_timeout_accepts_postgresql_durations(value: str, expected: str) -> None:
    with override_settings(MIGTOOLS_LOCK_TIMEOUT=value):
        assert conf.lock_timeout() == expected


@pytest.mark.django_db
def test_accepted_durations_mean_the_same_to_postgresql() -> None:
    """What conf accepts, a real server reads as the same number of milliseconds."""
    for value in ("5s", "500ms", "2min", "0.5s", ".5s", "5.s", "1e3ms", "1.5ms", "1d", "24d"):
        ms = conf.duration_ms("LOCK_TIMEOUT", value, none_ok=False)
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [value])
            cursor.execute("SELECT setting::float FROM pg_settings WHERE name = 'lock_timeout'")
            (server_ms,) = cursor.fetchone()
        assert ms is not None
        assert round(ms) == server_ms, value


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (5, "bare number is ambiguous"),
        (0.5, "bare number is ambiguous"),
        (True, "bare number is ambiguous"),
        ("5", "without a unit is ambiguous"),
        ("5 seconds", "not a PostgreSQL duration"),
        ("soon", "not a PostgreSQL duration"),
        ("-1s", "not a PostgreSQL duration"),
        ("5S", "not a PostgreSQL duration"),
        ("0", "zero turns the limit off"),
        ("0s", "zero turns the limit off"),
        ("0.0ms", "zero turns the limit off"),
        ("500us", "rounds to 0"),
        ("30d", "above PostgreSQL's limit for a timeout (2147483647ms, about 24.8 days)"),
        ("2147483648ms", "above PostgreSQL's limit"),
        (["5s"], "expected a string"),
    ],
)
def test_lock_timeout_refuses(value: Any, says: str) -> None:
    error = _refused("LOCK_TIMEOUT", value, conf.lock_timeout)
    assert says in str(error)
    assert error.setting == "MIGTOOLS_LOCK_TIMEOUT"
    assert error.check_id == "migtools.E101"
    assert error.returncode == 1
    assert "\n" not in str(error)


@pytest.mark.django_db
def test_the_timeout_limit_is_postgresqls() -> None:
    """The largest value conf lets through, the server takes; one millisecond more it refuses
    (a DataError at migrate time, before conf refused it)."""
    from django.db import DataError, transaction

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, true)", [f"{conf.PG_TIMEOUT_MAX_MS}ms"]
        )
        with pytest.raises(DataError), transaction.atomic():
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", ["30d"])
    assert conf.duration_ms(
        "LOCK_TIMEOUT", f"{conf.PG_TIMEOUT_MAX_MS}ms", none_ok=True, pg_timeout=True
    )


def test_statement_timeout_above_the_limit_is_refused() -> None:
    error = _refused("STATEMENT_TIMEOUT", "30d", lambda: conf.statement_timeout(False))
    assert error.check_id == "migtools.E102"
    assert error.hint == 'Give at most "24d", or None for no limit.'
    # The retry cap is migtools' own wait, not a PostgreSQL setting: no such limit.
    with override_settings(MIGTOOLS_LOCK_RETRY_MAX="30d"):
        assert conf.lock_retry_max_seconds() == 30 * 86400


def test_zero_hint_names_none() -> None:
    error = _refused("LOCK_TIMEOUT", "0", conf.lock_timeout)
    assert "MIGTOOLS_LOCK_TIMEOUT = None" in error.hint


def test_none_says_no_timeout_explicitly() -> None:
    with override_settings(MIGTOOLS_LOCK_TIMEOUT=None, MIGTOOLS_STATEMENT_TIMEOUT=None):
        assert conf.lock_timeout() == "0"  # PostgreSQL's "off"
        assert conf.statement_timeout(False) is None


def test_defaults() -> None:
    assert conf.lock_timeout() == "2s"
    assert conf.statement_timeout(False) == "5s"
    assert conf.statement_timeout(True) is None
    assert conf.lock_retries() == 3
    assert conf.lock_retry_delay() == 0.5
    assert conf.large_table_rows() == 1_000_000


def test_statement_timeout_refused_even_for_post_deployment() -> None:
    """A bad value is refused whatever the migration: the check must not depend on the plan."""
    error = _refused("STATEMENT_TIMEOUT", "0", lambda: conf.statement_timeout(True))
    assert error.check_id == "migtools.E102"


def test_retry_delay_is_a_duration() -> None:
    with override_settings(MIGTOOLS_LOCK_RETRY_DELAY="0.5s"):
        assert conf.lock_retry_delay() == 0.5
    with override_settings(MIGTOOLS_LOCK_RETRY_DELAY="100ms"):
        assert conf.lock_retry_delay() == pytest.approx(0.1)
    with override_settings(MIGTOOLS_LOCK_RETRY_DELAY=None):
        assert conf.lock_retry_delay() == 0.0
    assert "bare number" in str(_refused("LOCK_RETRY_DELAY", 0.5, conf.lock_retry_delay))
    assert _refused("LOCK_RETRY_MAX", "forever", conf.SETTINGS["LOCK_RETRY_MAX"][1]).check_id == (
        "migtools.E105"
    )


# -- Numbers, flags, strings -----------------------------------------------------------------


@pytest.mark.parametrize("value", ["three", "3", 1.5, True, -1, None])
def test_lock_retries_refuses(value: Any) -> None:
    assert _refused("LOCK_RETRIES", value, conf.lock_retries).check_id == "migtools.E103"


def test_lock_retries_zero_is_allowed() -> None:
    with override_settings(MIGTOOLS_LOCK_RETRIES=0):
        assert conf.lock_retries() == 0


@pytest.mark.parametrize("value", ["many", "1_000", 1e6, -5])
def test_large_table_rows_refuses(value: Any) -> None:
    assert _refused("LARGE_TABLE_ROWS", value, conf.large_table_rows).check_id == "migtools.E106"


def test_large_tables_a_string_is_not_a_list() -> None:
    error = _refused("LARGE_TABLES", "shop_item", conf.large_tables)
    assert 'MIGTOOLS_LARGE_TABLES = ["shop_item"]' in error.hint
    with override_settings(MIGTOOLS_LARGE_TABLES={"a", "b"}):
        assert conf.large_tables() == frozenset({"a", "b"})


def test_apps_a_string_is_not_read_letter_by_letter() -> None:
    error = _refused("APPS", "alpha", conf.apps_setting)
    assert error.check_id == "migtools.E108"
    assert 'MIGTOOLS_APPS = ["alpha"]' in error.hint


def test_apps_unknown_label_exits_1_as_every_bad_setting() -> None:
    error = _refused("APPS", ["alpha", "nosuch"], conf.apps_setting)
    assert "No installed app with label 'nosuch'" in str(error)
    assert error.returncode == 1


def test_apps_valid() -> None:
    with override_settings(MIGTOOLS_APPS=("alpha", "beta")):
        assert conf.apps_setting() == ["alpha", "beta"]


def test_require_name_and_main_branch() -> None:
    assert _refused("REQUIRE_NAME", "yes", conf.require_name).check_id == "migtools.E114"
    assert _refused("REQUIRE_NAME", 0, conf.require_name).check_id == "migtools.E114"
    assert _refused("MAIN_BRANCH", 5, conf.main_branch).check_id == "migtools.E115"
    assert _refused("MAIN_BRANCH", "", conf.main_branch).check_id == "migtools.E115"
    with override_settings(MIGTOOLS_REQUIRE_NAME=False, MIGTOOLS_MAIN_BRANCH="trunk"):
        assert conf.require_name() is False
        assert conf.main_branch() == "trunk"


def test_default_app() -> None:
    assert _refused("DEFAULT_APP", "nosuch", conf.default_app).returncode == 1
    with override_settings(MIGTOOLS_DEFAULT_APP="ledger"):
        assert conf.default_app() == "ledger"


def test_pg_version() -> None:
    accessor = conf.SETTINGS["PG_VERSION"][1]
    for value in ("15", 15.0, True, 3):
        assert _refused("PG_VERSION", value, accessor).check_id == "migtools.E117"
    with override_settings(MIGTOOLS_PG_VERSION=15):
        assert accessor() == 15


# -- Paths and mappings ----------------------------------------------------------------------


def test_lockfile_path_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    error = _refused("LOCKFILE_PATH", str(tmp_path / "nosuch" / "lock.txt"), conf.lockfile_setting)
    assert "does not exist" in str(error)
    assert error.check_id == "migtools.E109"
    assert not (tmp_path / "nosuch").exists()
    assert "is a directory" in str(_refused("LOCKFILE_PATH", tmp_path, conf.lockfile_setting))
    with override_settings(MIGTOOLS_LOCKFILE_PATH=tmp_path / "lock.txt"):
        assert conf.lockfile_setting() == tmp_path / "lock.txt"


def test_migration_test_dirs(tmp_path: Path) -> None:
    assert "not one path" in str(
        _refused("MIGRATION_TEST_DIRS", str(tmp_path), conf.migration_test_dirs)
    )
    assert "not an existing directory" in str(
        _refused("MIGRATION_TEST_DIRS", [tmp_path / "nosuch"], conf.migration_test_dirs)
    )
    with override_settings(MIGTOOLS_MIGRATION_TEST_DIRS=[tmp_path]):
        assert conf.migration_test_dirs() == [tmp_path]


def test_mappings() -> None:
    assert _refused("RULES", ["x"], conf.rule_levels).check_id == "migtools.E110"
    assert _refused("BASELINE", {"nosuch": "0001"}, conf.baseline).returncode == 1
    assert _refused("BASELINE", {"alpha": 1}, conf.baseline).check_id == "migtools.E111"
    error = _refused("HISTORICAL_TABLES", {"t": "nosuch"}, conf.historical_tables)
    assert error.check_id == "migtools.E112"
    assert "default, other" in error.hint
    with override_settings(MIGTOOLS_HISTORICAL_TABLES={"t": "other"}, MIGTOOLS_BASELINE={}):
        assert conf.historical_tables() == {"t": "other"}
        assert conf.baseline() == {}


# -- The table -------------------------------------------------------------------------------


def test_validate_reports_every_bad_setting_at_once() -> None:
    with override_settings(
        MIGTOOLS_LOCK_TIMEOUT=5, MIGTOOLS_LOCK_RETRIES="three", MIGTOOLS_APPS="alpha"
    ):
        ids = sorted(e.check_id for e in conf.validate())
    assert ids == ["migtools.E101", "migtools.E103", "migtools.E108"]
    assert conf.validate() == []  # the test settings are valid


def test_every_setting_has_its_own_id_and_a_doc_line() -> None:
    ids = [entry[0] for entry in conf.SETTINGS.values()]
    assert len(set(ids)) == len(ids)
    docs = (Path(__file__).parent.parent / "docs" / "settings.md").read_text(encoding="utf-8")
    for name, (check_id, _) in conf.SETTINGS.items():
        assert f"`MIGTOOLS_{name}`" in docs, name
        assert check_id in docs, check_id


def test_unknown_names() -> None:
    with override_settings(MIGTOOLS_LOCK_TIMOUT="5s", MIGTOOLS_FAST_PATHS=True):
        assert conf.unknown_names() == ["MIGTOOLS_LOCK_TIMOUT"]


@pytest.mark.parametrize(
    ("lock", "statement"), [("5s", "5s"), ("2s", "1s"), (None, "5s"), ("24d", "5s")]
)
def test_statement_timeout_not_above_lock_timeout_is_refused(
    lock: str | None, statement: str
) -> None:
    """A lock wait would end in statement_timeout and never be retried as one."""
    with override_settings(MIGTOOLS_LOCK_TIMEOUT=lock):
        error = _refused("STATEMENT_TIMEOUT", statement, lambda: conf.statement_timeout(False))
        assert error.check_id == "migtools.E102"
        assert "not above MIGTOOLS_LOCK_TIMEOUT" in error.problem
        assert "retried as a lock wait" in error.problem
        # Whatever the migration: the check must not depend on the plan.
        _refused("STATEMENT_TIMEOUT", statement, lambda: conf.statement_timeout(True))


def test_statement_timeout_above_lock_timeout_passes() -> None:
    with override_settings(MIGTOOLS_LOCK_TIMEOUT="4999ms", MIGTOOLS_STATEMENT_TIMEOUT="5s"):
        assert conf.statement_timeout(False) == "5s"
    with override_settings(MIGTOOLS_LOCK_TIMEOUT=None, MIGTOOLS_STATEMENT_TIMEOUT=None):
        assert conf.statement_timeout(False) is None
    # A bad lock timeout is E101's to report, not E102's.
    with override_settings(MIGTOOLS_LOCK_TIMEOUT="soon", MIGTOOLS_STATEMENT_TIMEOUT="5s"):
        assert conf.statement_timeout(False) == "5s"
