"""Files Django's loader reads are read by migtools too, and what Django's loader refuses is
one line in every command.

Each case runs ``manage.py`` (and the settings-free ``migtools`` CLI) as a real subprocess on a
copy of the throwaway project of ``tests/test_bad_input.py`` (a real git repository, a real
PostgreSQL database on which shop's first migration is applied and its second is not).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.test_bad_input import (  # noqa: F401 - the fixture is used by name
    Run,
    Template,
    _git,
    _rows,
    _with_db,
    manage,
    template,
)

_count = iter(range(1_000_000))


@dataclass
class Project:
    root: Path
    url: str

    def manage(self, *args: str) -> Run:
        return manage(self.root, self.url, *args)

    def cli(self, *args: str) -> Run:
        """The settings-free console script, as a pre-commit hook runs it."""
        env = {
            k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")
        }
        proc = subprocess.run(
            [sys.executable, "-m", "migtools.cli", *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Run(proc.stdout, proc.stderr, proc.returncode)

    def write(self, relpath: str, data: str | bytes) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(textwrap.dedent(data))
        return path

    def rows(self) -> list[tuple[str, str]]:
        return _rows(self.url)


@pytest.fixture
def project(template: Template, tmp_path: Path) -> Iterator[Project]:  # noqa: F811
    root = tmp_path / "project"
    shutil.copytree(template.root, root, symlinks=True)
    database = f"loader_{os.getpid()}_{next(_count)}"
    with psycopg.connect(template.server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(database), sql.Identifier(template.database)
            )
        )
    try:
        yield Project(root, _with_db(template.server_url, database))
    finally:
        with psycopg.connect(template.server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )


def shown(run: Run) -> str:
    return f"exit {run.returncode}\n--- stdout\n{run.out}\n--- stderr\n{run.err}"


# -- A latin-1 migration (PEP 263) ---------------------------------------------------------

LATIN1 = """\
# -*- coding: latin-1 -*-
from django.db import migrations

from migtools import CheckedMigration


class Migration(CheckedMigration):
    # Caf\xe9: a comment Python decodes as latin-1.
    is_post_deployment = False
    ignore_rules = {"run-sql-not-safe": "a comment on the table, caf\xe9"}
    dependencies = [("shop", "0002_item_note")]
    operations = [
        migrations.RunSQL(
            "COMMENT ON TABLE shop_item IS 'caf\xe9'",
            reverse_sql="COMMENT ON TABLE shop_item IS NULL",
            hints={"tables": ["shop_item"]},
        ),
    ]
""".encode("latin-1")


def _comment(url: str) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT obj_description('shop_item'::regclass, 'pg_class')").fetchone()
    return None if row is None else row[0]


def test_a_latin1_migration_works_in_every_command(project: Project) -> None:
    project.write("shop/migrations/0003_latin.py", LATIN1)
    wrote = project.manage("migrations_lockfile")
    assert wrote.returncode == 0, shown(wrote)
    for args in (
        ("migrations_lockfile", "--check"),
        ("makemigrations", "--check", "--dry-run"),
        ("showmigrations", "shop"),
        ("migrate", "--plan"),
    ):
        run = project.manage(*args)
        assert run.returncode == 0, shown(run)
        assert "Traceback" not in run.output and "Unicode" not in run.output, shown(run)
    assert "0003_latin" in project.manage("showmigrations", "shop").out
    sql_run = project.manage("sqlmigrate", "shop", "0003_latin")
    assert sql_run.returncode == 0 and "caf\xe9" in sql_run.out, shown(sql_run)
    verify = project.manage("verify_migrations")
    assert "Traceback" not in verify.output and "Unicode" not in verify.output, shown(verify)
    assert verify.returncode == 0, shown(verify)
    cli = project.cli("lockfile", "--check")
    assert cli.returncode == 0, shown(cli)
    applied = project.manage("migrate")
    assert applied.returncode == 0, shown(applied)
    assert ("shop", "0003_latin") in project.rows()
    assert _comment(project.url) == "caf\xe9"


def test_update_migration_renumbers_a_latin1_migration_and_keeps_its_encoding(
    project: Project,
) -> None:
    """main added 0003_theirs; this branch's 0003_latin (latin-1) becomes 0004, still latin-1."""
    theirs = LATIN1.decode("latin-1").replace("0003_latin", "x").replace("'caf\xe9'", "'theirs'")
    project.write("shop/migrations/0003_theirs.py", theirs.encode("latin-1"))
    assert project.manage("migrations_lockfile").returncode == 0
    _git(project.root, "add", "-A")
    _git(project.root, "commit", "-q", "-m", "main: 0003_theirs")
    project.write("shop/migrations/0003_latin.py", LATIN1)
    run = project.manage("update_migration")
    assert run.returncode == 0, shown(run)
    renamed = project.root / "shop" / "migrations" / "0004_latin.py"
    assert not (project.root / "shop" / "migrations" / "0003_latin.py").exists()
    data = renamed.read_bytes()
    assert b"caf\xe9" in data, data  # still latin-1, not re-encoded as UTF-8
    tree = ast.parse(data)  # bytes: decoded by the cookie, as import does
    assert "('shop', '0003_theirs')" in ast.unparse(tree)
    check = project.manage("migrations_lockfile", "--check")
    assert check.returncode == 0, shown(check)


def test_a_utf8_bom_migration_is_read(project: Project) -> None:
    text = LATIN1.decode("latin-1").replace("# -*- coding: latin-1 -*-\n", "")
    project.write("shop/migrations/0003_bom.py", b"\xef\xbb\xbf" + text.encode("utf-8"))
    for args in (("migrations_lockfile",), ("migrations_lockfile", "--check"), ("migrate",)):
        run = project.manage(*args)
        assert run.returncode == 0, shown(run)
    assert _comment(project.url) == "caf\xe9"


# -- What Django's loader refuses: one line, file:line, exit 1, in every command ------------

MIGRATION = """\
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = {deps}
    operations = []
"""


@dataclass(frozen=True)
class Kind:
    id: str
    # (relative path, content) of the bad file
    files: tuple[tuple[str, str], ...]
    where: str  # the file:line the message must name
    says: str = ""
    # Valid for a static reader (it raises only when imported): the commands that never import
    # migrations (the lockfile, the renamer) accept it, with the lockfile naming it.
    static: bool = False


KINDS = [
    Kind(
        "syntax-error",
        (
            (
                "shop/migrations/0003_bad.py",
                "from django.db import migrations\n\nclass Migration(\n",
            ),
        ),
        "0003_bad.py:3",
    ),
    Kind(
        "missing-dependency",
        (("shop/migrations/0003_bad.py", MIGRATION.format(deps='[("shop", "0099_nosuch")]')),),
        "0003_bad.py:5",
        "0099_nosuch",
    ),
    Kind(
        "cycle",
        (
            (
                "shop/migrations/0003_a.py",
                MIGRATION.format(deps='[("shop", "0002_item_note"), ("shop", "0003_b")]'),
            ),
            ("shop/migrations/0003_b.py", MIGRATION.format(deps='[("shop", "0003_a")]')),
        ),
        ".py:5: ",  # 0003_a's or 0003_b's dependency: either closes the loop
        "Cycle in the migration graph",
    ),
    Kind("empty-file", (("shop/migrations/0003_bad.py", ""),), "0003_bad.py:1"),
    Kind(
        "raises-on-import",
        (
            (
                "shop/migrations/0003_bad.py",
                "raise RuntimeError('boom at import')\n"
                + MIGRATION.format(deps='[("shop", "0002_item_note")]'),
            ),
        ),
        "0003_bad.py:1",
        "boom at import",
        static=True,
    ),
    Kind(
        "dependencies-none",
        (("shop/migrations/0003_bad.py", MIGRATION.format(deps="None")),),
        "0003_bad.py:5",
    ),
    Kind(
        "helper-module",
        (("shop/migrations/helpers.py", "def forwards(apps, schema_editor):\n    pass\n"),),
        "helpers.py:1",
        "Migration",
    ),
]

COMMANDS = {
    "migrate-plan": ("migrate", "--plan"),
    "makemigrations-check": ("makemigrations", "--check", "--dry-run"),
    "verify": ("verify_migrations",),
    "sqlmigrate": ("sqlmigrate", "shop", "0002_item_note"),
    "showmigrations": ("showmigrations",),
    "lockfile-check": ("migrations_lockfile", "--check"),
    "update-migration": ("update_migration",),
}


STATIC_COMMANDS = ("lockfile-check", "update-migration")


def _lock(project: Project, leaf: str) -> None:
    """The lockfile names ``leaf`` as shop's latest migration (a stale one is another error)."""
    path = project.root / "migrations_lockfile.txt"
    text = path.read_text()
    assert "0002_item_note" in text, text
    path.write_text(text.replace("0002_item_note", leaf))


def _setup(project: Project, kind: Kind) -> None:
    for relpath, content in kind.files:
        project.write(relpath, content)
    if kind.static:
        _lock(project, Path(kind.files[-1][0]).stem)


@pytest.mark.parametrize("command", list(COMMANDS), ids=list(COMMANDS))
@pytest.mark.parametrize("kind", KINDS, ids=[k.id for k in KINDS])
def test_a_loader_error_is_one_line(project: Project, kind: Kind, command: str) -> None:
    _setup(project, kind)
    rows = project.rows()
    run = project.manage(*COMMANDS[command])
    assert "Traceback" not in run.output, shown(run)
    if kind.static and command in STATIC_COMMANDS:
        assert run.returncode == 0, shown(run)
        return
    assert run.returncode == 1, shown(run)
    lines = [line for line in run.err.splitlines() if line.strip()]
    assert len(lines) == 1, shown(run)
    assert kind.where in lines[0], shown(run)
    assert kind.says in lines[0], shown(run)
    assert project.rows() == rows


@pytest.mark.parametrize("kind", [k for k in KINDS if not k.static], ids=lambda k: k.id)
def test_a_loader_error_is_one_line_in_the_cli(project: Project, kind: Kind) -> None:
    """The settings-free ``migtools lockfile --check`` (a pre-commit hook) reads what Django's
    loader would refuse without importing anything, and says so in one line too."""
    _setup(project, kind)
    run = project.cli("lockfile", "--check")
    assert "Traceback" not in run.output, shown(run)
    assert run.returncode == 1, shown(run)
    lines = [line for line in run.err.splitlines() if line.strip()]
    assert len(lines) == 1, shown(run)
    assert kind.where in lines[0] and kind.says in lines[0], shown(run)


def _inconsistent(project: Project) -> None:
    """shop.0003_x is recorded as applied, but its dependency shop.0002 is not."""
    project.write(
        "shop/migrations/0003_x.py", MIGRATION.format(deps='[("shop", "0002_item_note")]')
    )
    _lock(project, "0003_x")
    with psycopg.connect(project.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO django_migrations (app, name, applied) VALUES ('shop', '0003_x', now())"
        )


@pytest.mark.parametrize(
    "args", [COMMANDS["migrate-plan"], ("migrate",), COMMANDS["makemigrations-check"]]
)
def test_an_inconsistent_history_is_one_line(project: Project, args: tuple[str, ...]) -> None:
    _inconsistent(project)
    run = project.manage(*args)
    assert "Traceback" not in run.output, shown(run)
    assert run.returncode == 1, shown(run)
    lines = [line for line in run.err.splitlines() if line.strip()]
    assert len(lines) == 1, shown(run)
    assert "0003_x" in lines[0] and "0002_item_note" in lines[0], shown(run)
