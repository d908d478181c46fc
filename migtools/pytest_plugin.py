"""pytest plugin (entry point ``pytest11``) for migtools' migration tests.

- Marks every ``TestMigrations`` test and every test using ``migtools_migrator`` with
  ``migrations`` (select them with ``-m migrations``, or leave them out with
  ``-m "not migrations"``).
- Skips them, saying how to enable them, when pytest-django builds the test database without
  migrations (``--nomigrations``), or when the ini option ``migtools_require_migrations_flag``
  asks for an explicit ``--migrations`` (Sentry's convention).
- Snapshots (template databases) are kept for the next run with ``--reuse-db`` and rebuilt
  with ``--create-db``; otherwise they are dropped at the end of the session.
- ``migtools_migrator``: a ``migtools.testing.Migrator`` for function-style tests.
- Test databases are cloned from a template keyed by the migrations' content
  (``migtools.testing.creation``), installed just before pytest-django's ``django_db_setup``;
  ``MIGTOOLS_TEST_TEMPLATES = False`` turns that off.

Nothing here imports Django until pytest-django sets up a test database: a session without
Django tests costs what it costs without this plugin.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from migtools.testing import Migrator

MARKER = "migrations"
INI_REQUIRE_FLAG = "migtools_require_migrations_flag"
_FLAGS = ("--migrations", "--nomigrations", "--no-migrations")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        INI_REQUIRE_FLAG,
        type="bool",
        default=False,
        help="migtools: run migration tests only when pytest is called with --migrations.",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: a migration test (migtools TestMigrations / migtools_migrator); skipped "
        "under --nomigrations.",
    )


def _prepare_databases(config: pytest.Config) -> None:
    """Just before pytest-django creates the test databases (the first moment Django is
    needed): the snapshot policy, and the template-cloning creation on every alias."""
    from migtools.testing import snapshot

    snapshot.policy.keep = bool(_option(config, "reuse_db"))
    snapshot.policy.fresh = bool(_option(config, "create_db"))
    if not _option(config, "nomigrations"):
        from migtools.testing.creation import install_all

        install_all()


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: pytest.FixtureRequest) -> Any:
    if fixturedef.argname == "django_db_setup":
        _prepare_databases(request.config)
    return (yield)


def _option(config: pytest.Config, name: str) -> Any:
    try:
        return config.getoption(name)
    except ValueError:  # pytest-django not installed
        return None


def _last_migrations_flag(config: pytest.Config) -> str | None:
    """The last of --migrations/--nomigrations given (ini addopts, PYTEST_ADDOPTS, args)."""
    args: list[str] = []
    try:
        addopts = config.getini("addopts")
    except ValueError:
        addopts = []
    args += list(addopts) if isinstance(addopts, list) else shlex.split(str(addopts))
    args += shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
    args += [str(arg) for arg in config.invocation_params.args]
    flags = [arg for arg in args if arg in _FLAGS]
    return flags[-1] if flags else None


def skip_reason(config: pytest.Config) -> str | None:
    """Why migration tests cannot run in this session, with the way to enable them."""
    if _option(config, "nomigrations"):
        return (
            "migration test: pytest-django builds the test database without migrations "
            "(--nomigrations). Run `pytest --migrations` to enable migration tests."
        )
    if config.getini(INI_REQUIRE_FLAG) and _last_migrations_flag(config) != "--migrations":
        return (
            f"migration test: this project runs them only on request ({INI_REQUIRE_FLAG} = "
            "true). Run `pytest --migrations` (add --reuse-db to keep snapshots between runs)."
        )
    return None


def _is_migration_test_class(cls: type | None) -> bool:
    # By name, so that collection does not import Django's test framework.
    return cls is not None and any(
        klass.__module__ == "migtools.testing.case" and klass.__name__ == "TestMigrations"
        for klass in cls.__mro__
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = skip_reason(config)
    for item in items:
        if _is_migration_test_class(getattr(item, "cls", None)) or (
            "migtools_migrator" in getattr(item, "fixturenames", ())
        ):
            item.add_marker(MARKER)
        if reason and item.get_closest_marker(MARKER):
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_sessionfinish(session: pytest.Session) -> None:
    snapshot = sys.modules.get("migtools.testing.snapshot")  # imported only if Django ran
    if snapshot is not None:
        snapshot.finish()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    creation = sys.modules.get("migtools.testing.creation")
    if creation is not None and (creation.record.cloned or creation.record.kept):
        from migtools.testing.creation import describe

        record = creation.record
        parts = [f"cloned from {describe(outcome)}" for outcome in record.cloned]
        parts += ["kept (--reuse-db, migrations unchanged)"] * record.kept
        terminalreporter.write_line("migtools: test databases " + "; ".join(parts))
    snapshot = sys.modules.get("migtools.testing.snapshot")
    if snapshot is None:
        return
    stats = snapshot.totals()
    built, reused = len(stats.built), len(stats.reused)
    if built or reused:
        terminalreporter.write_line(
            f"migtools: migration snapshots built: {built}, reused: {reused}"
        )


@pytest.fixture(scope="session")
def _migtools_test_databases(
    request: pytest.FixtureRequest, django_db_setup: None, django_db_blocker: Any
) -> Iterator[None]:
    """Create (and later destroy) an alias's test database that no collected test asked
    pytest-django for, e.g. ``connection="other"`` used only through ``migtools_migrator``."""
    from django.db import connections

    from migtools.testing import migrator as testing

    created: list[tuple[str, str]] = []
    keep = bool(_option(request.config, "reuse_db")) and not _option(request.config, "create_db")

    def ensure(alias: str) -> None:
        wrapper = connections[alias]
        old_name = str(wrapper.settings_dict["NAME"])
        with django_db_blocker.unblock():
            wrapper.creation.create_test_db(
                verbosity=0, autoclobber=True, serialize=False, keepdb=keep
            )
        created.append((alias, old_name))

    testing.ensure_test_database = ensure
    try:
        yield
    finally:
        testing.ensure_test_database = None
        if not keep:
            with django_db_blocker.unblock():
                for alias, old_name in reversed(created):
                    connections[alias].creation.destroy_test_db(old_name, verbosity=0)


@pytest.fixture
def migtools_migrator(_migtools_test_databases: None, django_db_blocker: Any) -> Iterator[Migrator]:
    """A ``migtools.testing.Migrator``: ``before(migrate_from, app=…, connection=…)`` returns
    the historical apps to seed with, ``after(migrate_to)`` runs the migrations and returns the
    apps at that point; at the end the database is back at head (and nothing was flushed).

    Do not combine with pytest-django's ``db``/``transactional_db``: the migrator manages the
    database itself.
    """
    from migtools.testing import Migrator

    with django_db_blocker.unblock():
        migrator = Migrator("migtools_migrator")
        try:
            yield migrator
        finally:
            migrator.reset()
