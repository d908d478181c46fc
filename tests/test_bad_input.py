"""The bad-input catalogue: every command, fed what users and operators really get wrong.

Each case runs ``manage.py`` as a real subprocess on a copy of one throwaway project (a real git
repository, committed) with its own real PostgreSQL database (a copy of a template database on
which the project's first migration is applied and its second is not). Each asserts the exit
code of the table in ``migtools.errors``, a message that says what is wrong (and never a
"Traceback"), and that no byte of the work tree, nothing in git and no row of
``django_migrations`` changed.

Cases that another engineer's branch fixes are marked ``xfail(strict=True)``: they must fail
here, and they fail loudly once they pass (then the mark goes).
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.pgserver import ensure_database_url

SETTINGS = """\
import os

import dj_database_url

SECRET_KEY = "bad-input"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["migtools", "django.contrib.contenttypes", "django.contrib.auth", "shop", "blog"]
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}

from proj.local import *  # noqa: E402,F403 - each case's own settings
"""

MANAGE = """\
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
"""

MODELS = """\
from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=20)
"""

NOTE_FIELD = "    note = models.TextField(null=True)\n"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "bad input",
    "GIT_AUTHOR_EMAIL": "bad@input.invalid",
    "GIT_COMMITTER_NAME": "bad input",
    "GIT_COMMITTER_EMAIL": "bad@input.invalid",
}


def _git(root: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=root,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


def _with_db(url: str, name: str) -> str:
    base, _, _query = url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}"


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the socket is


@dataclass(frozen=True)
class Run:
    out: str
    err: str
    returncode: int

    @property
    def output(self) -> str:
        return self.out + self.err


def manage(root: Path, url: str, *args: str) -> Run:
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONWARNINGS": "ignore", "DATABASE_URL": url}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(proc.stdout, proc.stderr, proc.returncode)


@dataclass
class Template:
    root: Path
    server_url: str
    database: str


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    server_url = ensure_database_url()
    root = tmp_path_factory.mktemp("bad_input") / "project"
    (root / "proj").mkdir(parents=True)
    (root / "proj" / "__init__.py").write_text("")
    (root / "proj" / "settings.py").write_text(SETTINGS)
    (root / "proj" / "local.py").write_text("")
    (root / "manage.py").write_text(MANAGE)
    for app in ("shop", "blog"):
        (root / app).mkdir()
        (root / app / "__init__.py").write_text("")
        (root / app / "models.py").write_text(MODELS if app == "shop" else "")
    (root / ".gitignore").write_text("__pycache__/\n")
    database = f"bad_input_template_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(database)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    url = _with_db(server_url, database)
    made = manage(root, url, "makemigrations", "shop", "-n", "initial")
    assert made.returncode == 0, made.output
    (root / "shop" / "models.py").write_text(MODELS + NOTE_FIELD)
    made = manage(root, url, "makemigrations", "shop", "-n", "item_note")
    assert made.returncode == 0, made.output
    applied = manage(root, url, "migrate")
    assert applied.returncode == 0, applied.output
    applied = manage(root, url, "migrate", "shop", "0001")
    assert applied.returncode == 0, applied.output
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "initial")
    yield Template(root, server_url, database)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(database)))


# -- One case ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    code: int
    says: tuple[str, ...]
    settings: str = ""
    setup: Callable[[Path], None] | None = None
    # How DATABASE_URL is given to the process: None = the case's own database; else a
    # function of (server url, case database name) -> url.
    url: Callable[[str, str], str] | None = None
    xfail: str | None = None
    marks: tuple[Any, ...] = field(default=())


_counter = itertools.count()


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and ".git" not in p.parts
    }


def _git_state(root: Path) -> tuple[str, str, str]:
    return (
        _git(root, "rev-parse", "HEAD"),
        _git(root, "status", "--porcelain", "--untracked-files=all"),
        _git(root, "diff", "--cached", "--binary"),
    )


def _rows(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return [
            (str(app), str(name))
            for app, name in conn.execute(
                "SELECT app, name FROM django_migrations ORDER BY id"
            ).fetchall()
        ]


def run_case(case: Case, template: Template, tmp_path: Path) -> None:
    root = tmp_path / "project"
    shutil.copytree(template.root, root, symlinks=True)
    (root / "proj" / "local.py").write_text(textwrap.dedent(case.settings))
    if case.setup is not None:
        case.setup(root)
    database = f"bad_input_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(template.server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(database), sql.Identifier(template.database)
            )
        )
    own_url = _with_db(template.server_url, database)
    try:
        tree, git_state, rows = _tree(root), _git_state(root), _rows(own_url)
        url = own_url if case.url is None else case.url(template.server_url, database)
        result = manage(root, url, *case.args)
        shown = f"exit {result.returncode}\n--- stdout\n{result.out}\n--- stderr\n{result.err}"
        assert "Traceback" not in result.output, shown
        assert result.returncode == case.code, shown
        for text in case.says:
            assert text in result.output, shown
        assert _rows(own_url) == rows, "django_migrations changed"
        assert _git_state(root) == git_state, "git state changed"
        assert _tree(root) == tree, "the work tree changed"
    finally:
        with psycopg.connect(template.server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )


# -- Setups --------------------------------------------------------------------------------


def _append(relpath: str, text: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        path = root / relpath
        path.write_text(path.read_text() + textwrap.dedent(text))

    return setup


def _write(relpath: str, data: bytes | str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(textwrap.dedent(data))

    return setup


def _non_utf8_lockfile(root: Path) -> None:
    path = root / "migrations_lockfile.txt"
    path.write_bytes(path.read_bytes().replace(b"lockfile.", b"lockfile \xe9t\xe9."))


def _ignore_typo(root: Path) -> None:
    path = next((root / "shop" / "migrations").glob("0002_*.py"))
    text = path.read_text()
    marker = "class Migration(CheckedMigration):\n"
    assert marker in text, text
    path.write_text(
        text.replace(marker, marker + '    ignore_rules = {"volatile-defualt": "typo"}\n')
    )


def _blog_without_init(root: Path) -> None:
    (root / "blog" / "migrations").mkdir()
    (root / "blog" / "migrations" / "0001_initial.py").write_text(
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        "    operations = []\n"
    )


def _data_migration(body: str) -> Callable[[Path], None]:
    """blog's first migration, a data migration (atomic: a failure leaves no row); the
    case runs ``migrate blog``, so nothing else is applied before it."""
    source = f"""\
from django.db import migrations

from migtools import CheckedMigration


def forwards(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute({body!r})


class Migration(CheckedMigration):
    is_post_deployment = False
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
"""

    def setup(root: Path) -> None:
        _write("blog/migrations/__init__.py", "")(root)
        _write("blog/migrations/0001_data.py", source)(root)

    return setup


LEAF = """\
from django.db import migrations

from migtools import CheckedMigration


class Migration(CheckedMigration):
    is_post_deployment = False
    dependencies = [("shop", "0002_item_note")]
    operations = []
"""


def _two_leaves(root: Path) -> None:
    """main added 0003_theirs (committed); this branch adds 0003_mine (not on main)."""
    (root / "shop" / "migrations" / "0003_theirs.py").write_text(LEAF)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "main: 0003_theirs")
    (root / "shop" / "migrations" / "0003_mine.py").write_text(LEAF)


def _port_closed(server: str, database: str) -> str:
    return f"postgres://postgres@127.0.0.1:{_closed_port()}/{database}"


def _no_such_role(server: str, database: str) -> str:
    base = _with_db(server, database)
    scheme, _, rest = base.partition("://")
    hostpart = rest.split("@", 1)[-1]
    return f"{scheme}://nosuchrole@{hostpart}"


def _no_such_database(server: str, database: str) -> str:
    return _with_db(server, "nosuch_database")


# -- The catalogue -------------------------------------------------------------------------

E = "SystemCheckError"

CASES = [
    # Settings: durations (issue 10 item 8; GUIDE "Durations in settings").
    Case(
        "lock-timeout-int",
        ("migrate",),
        1,
        ("migtools.E101", "bare number"),
        "MIGTOOLS_LOCK_TIMEOUT = 5",
    ),
    Case(
        "lock-timeout-words",
        ("migrate",),
        1,
        ("migtools.E101", "'5 seconds'"),
        'MIGTOOLS_LOCK_TIMEOUT = "5 seconds"',
    ),
    Case(
        "lock-timeout-soon", ("migrate",), 1, ("migtools.E101",), 'MIGTOOLS_LOCK_TIMEOUT = "soon"'
    ),
    Case(
        "lock-timeout-negative",
        ("migrate",),
        1,
        ("migtools.E101",),
        'MIGTOOLS_LOCK_TIMEOUT = "-1s"',
    ),
    Case(
        "lock-timeout-zero",
        ("migrate",),
        1,
        ("migtools.E101", "MIGTOOLS_LOCK_TIMEOUT = None"),
        'MIGTOOLS_LOCK_TIMEOUT = "0"',
    ),
    Case(
        "lock-timeout-microseconds",
        ("migrate",),
        1,
        ("migtools.E101", "rounds to 0"),
        'MIGTOOLS_LOCK_TIMEOUT = "500us"',
    ),
    Case(
        "statement-timeout-zero",
        ("migrate",),
        1,
        ("migtools.E102",),
        'MIGTOOLS_STATEMENT_TIMEOUT = "0s"',
    ),
    Case(
        "statement-timeout-float",
        ("migrate",),
        1,
        ("migtools.E102",),
        "MIGTOOLS_STATEMENT_TIMEOUT = 1.5",
    ),
    Case(
        "lock-retries-three",
        ("migrate",),
        1,
        ("migtools.E103", "whole number"),
        'MIGTOOLS_LOCK_RETRIES = "three"',
    ),
    Case(
        "lock-retries-negative", ("migrate",), 1, ("migtools.E103",), "MIGTOOLS_LOCK_RETRIES = -1"
    ),
    Case(
        "lock-retry-delay-float",
        ("migrate",),
        1,
        ("migtools.E104",),
        "MIGTOOLS_LOCK_RETRY_DELAY = 0.5",
    ),
    Case(
        "lock-retry-max-forever",
        ("migrate",),
        1,
        ("migtools.E105",),
        'MIGTOOLS_LOCK_RETRY_MAX = "forever"',
    ),
    Case(
        "pre-deploy-bad-timeout",
        ("migrate", "--pre-deploy"),
        1,
        ("migtools.E101",),
        'MIGTOOLS_LOCK_TIMEOUT = "5 sec"',
    ),
    Case(
        "migrate-app-bad-timeout",
        ("migrate", "shop"),
        1,
        ("migtools.E101",),
        "MIGTOOLS_LOCK_TIMEOUT = 5000",
    ),
    # Settings: the others.
    Case(
        "large-table-rows-many",
        ("verify_migrations",),
        1,
        ("migtools.E106",),
        'MIGTOOLS_LARGE_TABLE_ROWS = "many"',
    ),
    Case(
        "large-tables-string",
        ("verify_migrations",),
        1,
        ("migtools.E107", '["shop_item"]'),
        'MIGTOOLS_LARGE_TABLES = "shop_item"',
    ),
    Case(
        "apps-string",
        ("makemigrations", "shop", "-n", "x"),
        1,
        ("migtools.E108", '["shop"]'),
        'MIGTOOLS_APPS = "shop"',
    ),
    Case(
        "apps-string-migrate",
        ("migrate",),
        1,
        ("migtools.E108", '["shop"]'),
        'MIGTOOLS_APPS = "shop"',
    ),
    Case(
        "apps-unknown-label",
        ("migrations_lockfile", "--check"),
        1,  # a bad setting exits 1, like every other (faults issue: one condition, one code)
        ("No installed app with label 'nosuch'",),
        'MIGTOOLS_APPS = ["shop", "nosuch"]',
    ),
    Case(
        "lockfile-path-missing-dir",
        ("makemigrations", "shop", "--empty", "-n", "x"),
        1,
        ("migtools.E109", "does not exist"),
        'MIGTOOLS_LOCKFILE_PATH = "/nonexistent/dir/lock.txt"',
    ),
    Case(
        "lockfile-path-missing-dir-no-checks",
        ("migrations_lockfile",),
        1,
        ("MIGTOOLS_LOCKFILE_PATH", "does not exist"),
        'MIGTOOLS_LOCKFILE_PATH = "/nonexistent/dir/lock.txt"',
    ),
    Case(
        "rules-unknown-id",
        ("verify_migrations",),
        1,
        ("migtools.E110", "'no-such-rule'"),
        'MIGTOOLS_RULES = {"no-such-rule": "off"}',
    ),
    Case(
        "rules-unknown-level",
        ("verify_migrations",),
        1,
        ("migtools.E110", "'loud'"),
        'MIGTOOLS_RULES = {"volatile-default": "loud"}',
    ),
    Case(
        "rules-not-a-dict",
        ("migrate",),
        1,
        ("migtools.E110",),
        'MIGTOOLS_RULES = ["add-field-default"]',
    ),
    Case(
        "baseline-unknown-migration",
        ("check",),
        0,
        ("migtools.W103", "0099_nosuch"),
        'MIGTOOLS_BASELINE = {"shop": "0099_nosuch"}',
    ),
    Case(
        "baseline-unknown-app",
        ("migrate",),
        1,
        ("migtools.E111", "'nosuch'"),
        'MIGTOOLS_BASELINE = {"nosuch": "0001_initial"}',
    ),
    Case(
        "historical-tables-alias",
        ("migrate",),
        1,
        ("migtools.E112", "'elsewhere'"),
        'MIGTOOLS_HISTORICAL_TABLES = {"shop_old": "elsewhere"}',
    ),
    Case(
        "migration-test-dirs-string",
        ("check",),
        1,
        ("migtools.E113",),
        'MIGTOOLS_MIGRATION_TEST_DIRS = "tests"',
    ),
    Case(
        "require-name-string",
        ("makemigrations", "shop", "--empty"),
        1,
        ("migtools.E114",),
        'MIGTOOLS_REQUIRE_NAME = "yes"',
    ),
    Case("main-branch-int", ("check",), 1, ("migtools.E115",), "MIGTOOLS_MAIN_BRANCH = 5"),
    Case(
        "default-app-unknown", ("check",), 1, ("migtools.E116",), 'MIGTOOLS_DEFAULT_APP = "nosuch"'
    ),
    Case(
        "pg-version-string",
        ("verify_migrations",),
        1,
        ("migtools.E117",),
        'MIGTOOLS_PG_VERSION = "15"',
    ),
    Case(
        "misspelt-setting",
        ("check",),
        0,
        ("migtools.W101", "MIGTOOLS_LOCK_TIMOUT"),
        'MIGTOOLS_LOCK_TIMOUT = "5s"',
    ),
    Case(
        "ignore-rules-typo",
        ("check",),
        0,
        (
            "migtools.W102",
            "0002_item_note.py",
            "'volatile-defualt'",
            "Did you mean 'volatile-default'?",
        ),
        setup=_ignore_typo,
    ),
    # Unknown app labels exit 2, unknown migration names 1, in every command (item 10).
    Case(
        "migrate-unknown-app", ("migrate", "nosuch"), 2, ("No installed app with label 'nosuch'",)
    ),
    Case("migrate-app-without-migrations", ("migrate", "blog"), 2, ("does not have migrations",)),
    # The same condition, the same code in every command (faults issue, "one place per concern").
    Case(
        "sqlmigrate-app-without-migrations",
        ("sqlmigrate", "blog", "0001"),
        2,
        ("App 'blog' does not have migrations.",),
    ),
    Case(
        "sqlmigrate-backwards-app-without-migrations",
        ("sqlmigrate", "--backwards", "blog", "0001"),
        2,
        ("App 'blog' does not have migrations.",),
    ),
    Case(
        "verify-app-without-migrations",
        ("verify_migrations", "blog"),
        2,
        ("App 'blog' does not have migrations.",),
    ),
    Case(
        "rules-unknown-id-no-checks",
        ("verify_migrations", "--skip-checks"),
        1,
        ("MIGTOOLS_RULES names an unknown rule 'no-such-rule'",),
        'MIGTOOLS_RULES = {"no-such-rule": "off"}',
    ),
    Case("migrate-unknown-migration", ("migrate", "shop", "0099_nosuch"), 1, ("0099_nosuch",)),
    Case(
        "pre-deploy-unknown-app",
        ("migrate", "nosuch", "--pre-deploy"),
        2,
        ("No installed app with label 'nosuch'",),
    ),
    Case(
        "makemigrations-unknown-app",
        ("makemigrations", "nosuch", "-n", "x"),
        2,
        ("No installed app with label 'nosuch'",),
    ),
    Case(
        "squash-unknown-app",
        ("squashmigrations", "nosuch", "0002"),
        2,
        ("No installed app with label 'nosuch'",),
    ),
    Case(
        "squash-unknown-migration", ("squashmigrations", "shop", "0099", "--noinput"), 1, ("0099",)
    ),
    Case(
        "sqlmigrate-unknown-app",
        ("sqlmigrate", "nosuch", "0001"),
        2,
        ("No installed app with label 'nosuch'",),
    ),
    Case("sqlmigrate-unknown-migration", ("sqlmigrate", "shop", "0099"), 1, ("0099",)),
    Case("verify-unknown-app", ("verify_migrations", "nosuch"), 2, ("nosuch",)),
    Case(
        "verify-unknown-migration",
        ("verify_migrations", "shop", "0099_nosuch"),
        1,
        ("0099_nosuch",),
    ),
    Case("update-unknown-migration", ("update_migration", "0099_nosuch"), 1, ("0099_nosuch",)),
    Case("update-unknown-app", ("update_migration", "0002", "nosuch"), 2, ("nosuch",)),
    Case("showmigrations-unknown-app", ("showmigrations", "nosuch"), 2, ("nosuch",)),
    Case(
        "verify-squashes-unknown-app",
        ("verify_squashes", "nosuch"),
        2,
        ("No installed app with label 'nosuch'",),
    ),
    Case(
        "prune-squashed-unknown-app",
        ("prune_squashed", "nosuch"),
        2,
        ("No installed app with label 'nosuch'",),
    ),
    Case(
        "prune-squashed-unknown-alias",
        ("prune_squashed", "--database", "nosuch"),
        2,
        ("Unknown database alias 'nosuch'",),
    ),
    # --database names an alias DATABASES does not define: exit 2 (item 9).
    # (Django's own argument parser refuses it for its commands: a usage error.)
    Case(
        "migrate-unknown-alias",
        ("migrate", "--database", "nosuch"),
        2,
        ("invalid choice: 'nosuch'", "'default'"),
    ),
    Case(
        "migrate-unknown-alias-nothing-to-do",
        ("migrate", "shop", "0001", "--database", "nosuch"),
        2,
        ("invalid choice: 'nosuch'",),
    ),
    Case(
        "showmigrations-unknown-alias",
        ("showmigrations", "--database", "nosuch"),
        2,
        ("invalid choice: 'nosuch'",),
    ),
    Case(
        "sqlmigrate-unknown-alias",
        ("sqlmigrate", "shop", "0001", "--database", "nosuch"),
        2,
        ("invalid choice: 'nosuch'",),
    ),
    Case(
        "update-unknown-alias-nothing-to-do",
        ("update_migration", "--database", "nosuch"),
        2,
        ("Unknown database alias 'nosuch'",),
    ),
    # The database down or refusing the login (item 9; GUIDE "Database down").
    Case(
        "migrate-port-closed",
        ("migrate",),
        1,
        ("Database 'default'", "host 127.0.0.1", "is unreachable"),
        url=_port_closed,
    ),
    Case(
        "migrate-no-such-role",
        ("migrate",),
        1,
        ("Database 'default'", "nosuchrole"),
        url=_no_such_role,
    ),
    Case(
        "migrate-no-such-database",
        ("migrate",),
        1,
        ("Database 'default'", "nosuch_database"),
        url=_no_such_database,
    ),
    Case(
        "pre-deploy-port-closed",
        ("migrate", "--pre-deploy"),
        1,
        ("Database 'default'", "is unreachable"),
        url=_port_closed,
    ),
    Case(
        "showmigrations-port-closed",
        ("showmigrations",),
        1,
        ("Database 'default'", "is unreachable"),
        url=_port_closed,
    ),
    Case(
        "server-gone-mid-run",
        ("migrate", "blog"),
        1,
        ("Lost the connection to database 'default'", "port", "mid-run"),
        setup=_data_migration("SELECT pg_terminate_backend(pg_backend_pid())"),
    ),
    Case("verify-offline", ("verify_migrations",), 0, ("offline",), url=_port_closed),
    Case(
        "sqlmigrate-offline",
        ("sqlmigrate", "shop", "0002"),
        0,
        ("ALTER TABLE",),
        url=_port_closed,
    ),
    Case(
        "update-dry-run-two-leaves",  # the control of the next case: with a database
        ("update_migration", "--dry-run"),
        0,
        ("0004_mine", "Dry run: nothing was changed."),
        setup=_two_leaves,
    ),
    Case(
        "update-dry-run-databases-empty",
        ("update_migration", "--dry-run"),
        0,
        ("0004_mine", "Dry run: nothing was changed."),
        "DATABASES = {}",
        setup=_two_leaves,
    ),
    Case(
        "update-databases-empty-nothing-to-do",
        ("update_migration",),
        0,
        ("conflicts to resolve",),
        "DATABASES = {}",
    ),
    Case(
        "verify-since-missing-ref",
        ("verify_migrations", "--since", "nosuchref"),
        2,
        ("Git ref 'nosuchref' does not exist", "bad revision"),
    ),
    Case(
        "statement-timeout-in-data-migration",
        ("migrate", "blog"),
        1,
        ("0001_data", "MIGTOOLS_STATEMENT_TIMEOUT", "is_post_deployment"),
        # Timeouts come with migtools' backend (Django's own sets none).
        'MIGTOOLS_STATEMENT_TIMEOUT = "100ms"\nMIGTOOLS_LOCK_TIMEOUT = "50ms"\n'
        "import os, dj_database_url\n"
        'DATABASES = {"default": {**dj_database_url.parse(os.environ["DATABASE_URL"]),'
        ' "ENGINE": "migtools.db.backends.postgresql"}}',
        setup=_data_migration("SELECT pg_sleep(2)"),
    ),
    # The lockfile and the migration files.
    Case(
        "lockfile-not-utf8-check",
        ("migrations_lockfile", "--check"),
        1,
        ("not UTF-8", "migrations_lockfile.txt:"),
        setup=_non_utf8_lockfile,
    ),
    Case(
        "lockfile-not-utf8-migrate-plan",
        ("migrate", "--plan"),
        0,
        ("migtools.W002", "not UTF-8", "0002_item_note"),
        setup=_non_utf8_lockfile,
    ),
    Case(
        "lockfile-not-utf8-makemigrations-check",
        ("makemigrations", "--check"),
        2,
        ("not UTF-8",),
        setup=_non_utf8_lockfile,
    ),
    Case(
        "lockfile-not-utf8-verify",
        ("verify_migrations",),
        0,
        ("migtools.W002", "not UTF-8"),
        setup=_non_utf8_lockfile,
    ),
    Case(
        "lockfile-not-utf8-update-migration",
        ("update_migration",),
        0,
        ("conflicts to resolve",),
        setup=_non_utf8_lockfile,
    ),
    Case(
        "lockfile-garbage-line",
        ("migrations_lockfile", "--check"),
        1,
        ("expected 'app_label: migration_name'",),
        # After our "#" header (a file starting with prose is read as Sentry's format).
        setup=_write("migrations_lockfile.txt", "# migtools lockfile\n\nshop 0002_item_note\n"),
    ),
    Case(
        "lockfile-conflict-markers",
        ("migrations_lockfile", "--check"),
        1,
        ("conflict markers", "update_migration"),
        setup=_write(
            "migrations_lockfile.txt",
            "<<<<<<< HEAD\nshop: 0002_a\n=======\nshop: 0002_b\n>>>>>>> x\n",
        ),
    ),
    Case(
        "lockfile-missing-check",
        ("migrations_lockfile", "--check"),
        1,
        ("No lockfile at",),
        setup=lambda root: (root / "migrations_lockfile.txt").unlink(),
    ),
    Case(
        "migration-syntax-error",
        ("migrations_lockfile", "--check"),
        1,
        ("0003_broken.py:1", "syntax error"),
        setup=_write("shop/migrations/0003_broken.py", "def (:\n"),
    ),
    Case(
        "migrations-dir-without-init",
        ("migrations_lockfile", "--check"),
        0,
        ("is up to date",),
        setup=_blog_without_init,
    ),
    Case("update-dry-run-nothing", ("update_migration", "--dry-run"), 0, ("conflicts to resolve",)),
]


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            case,
            id=case.id,
            marks=[pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else [],
        )
        for case in CASES
    ],
)
def test_bad_input(case: Case, template: Template, tmp_path: Path) -> None:
    run_case(case, template, tmp_path)


def test_catalogue_covers_every_command() -> None:
    commands = {case.args[0] for case in CASES}
    assert {
        "makemigrations",
        "migrations_lockfile",
        "update_migration",
        "sqlmigrate",
        "verify_migrations",
        "migrate",
        "squashmigrations",
        "verify_squashes",
        "prune_squashed",
        "showmigrations",
        "check",
    } <= commands
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)
