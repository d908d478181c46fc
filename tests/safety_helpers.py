"""Helpers for the safety-on-apply tests: a mini project on its own fresh database using the
migtools backend, migrations written by hand, and a second connection to hold locks."""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dj_database_url
import psycopg

from tests.miniproject import MiniProject, make_project

HEADER = """\
from django.db import migrations, models

from migtools import CheckedMigration
from migtools.operations import DeletionAction, SafeDeleteModel, SafeRemoveField, SafeRunSQL
"""


def server_conninfo(dbname: str = "postgres") -> str:
    cfg = dj_database_url.parse(os.environ["DATABASE_URL"])
    return psycopg.conninfo.make_conninfo(
        host=cfg["HOST"],
        port=cfg["PORT"] or 5432,
        user=cfg["USER"],
        password=cfg["PASSWORD"] or None,
        dbname=dbname,
    )


def create_database() -> str:
    name = f"mt_safe_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


@contextmanager
def connect(dbname: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(server_conninfo(dbname), autocommit=True) as conn:
        yield conn


def query(dbname: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with connect(dbname) as conn:
        cur = conn.execute(sql, params)  # type: ignore[arg-type]
        return list(cur.fetchall()) if cur.description else []


SAFE_SETTINGS = """\
DATABASES["default"]["ENGINE"] = "migtools.db.backends.postgresql"
DATABASES["default"]["NAME"] = {db!r}
MIGTOOLS_APPS = ["shop"]
MIGTOOLS_LOCK_RETRY_DELAY = "100ms"
SILENCED_SYSTEM_CHECKS = ["migtools.W001"]
{extra}
"""


def safe_project(root: Path, extra: str = "", models: str | None = None) -> tuple[MiniProject, str]:
    db = create_database()
    proj = make_project(root, extra_settings=SAFE_SETTINGS.format(db=db, extra=extra))
    (root / "shop" / "migrations").mkdir()
    (root / "shop" / "migrations" / "__init__.py").write_text("")
    if models is not None:
        (root / "shop" / "models.py").write_text(textwrap.dedent(models))
    return proj, db


def migration(
    proj: MiniProject,
    name: str,
    deps: list[tuple[str, str]],
    operations: str,
    *,
    post: bool = False,
    atomic: bool = True,
    extra: str = "",
    base: str = "CheckedMigration",
) -> None:
    body = "" if base != "CheckedMigration" else f"    is_post_deployment = {post}\n"
    if not atomic:
        body += "    atomic = False\n"
    body += textwrap.indent(textwrap.dedent(extra), "    ")
    ops = textwrap.indent(textwrap.dedent(operations).strip(), "        ")
    proj.write(
        f"shop/migrations/{name}.py",
        "",
    )
    (proj.root / "shop" / "migrations" / f"{name}.py").write_text(
        f"{HEADER}\n\nclass Migration({base}):\n{body}"
        f"    dependencies = {deps!r}\n"
        f"    operations = [\n{ops}\n    ]\n"
    )


INITIAL = """\
migrations.CreateModel(
    name="Item",
    fields=[
        ("id", models.BigAutoField(primary_key=True)),
        ("name", models.CharField(max_length=20)),
    ],
),
"""
