"""A mini project for the backfill tests: a real database of its own, migrations with
RunBackfill written by hand, rows inserted straight through psycopg."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.miniproject import MiniProject
from tests.safety_helpers import query, safe_project

MODELS = """\
import uuid

from django.db import models


class Item(models.Model):
    id = models.BigAutoField(primary_key=True)
    n = models.IntegerField(default=0)
    note = models.CharField(max_length=40, null=True)


class Token(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    n = models.IntegerField(default=0)
"""

INITIAL = """\
from django.db import migrations, models

from migtools import CheckedMigration


class Migration(CheckedMigration):
    is_post_deployment = False
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Item",
            fields=[
                ("id", models.BigAutoField(primary_key=True)),
                ("n", models.IntegerField(default=0)),
                ("note", models.CharField(max_length=40, null=True)),
            ],
        ),
        migrations.CreateModel(
            name="Token",
            fields=[
                ("id", models.UUIDField(primary_key=True)),
                ("n", models.IntegerField(default=0)),
            ],
        ),
    ]
"""

BACKFILL = """\
import time

from django.db import migrations
from django.db.models import F

from migtools import CheckedMigration
from migtools.operations import RunBackfill


def bump(apps, batch):
    batch.update(n=F("n") + 1)
    time.sleep({sleep})
{extra_code}

class Migration(CheckedMigration):
    is_post_deployment = True
    atomic = {atomic}
    dependencies = [("shop", "0001_initial")]
    operations = [
        RunBackfill("shop.{model}", bump, {kwargs}),
    ]
"""

ENSURE = """\
from django.db import migrations

from migtools import CheckedMigration
from migtools.operations import EnsureBackfilled


class Migration(CheckedMigration):
    is_post_deployment = True
    dependencies = [("shop", "0002_backfill")]
    operations = [EnsureBackfilled("shop", "0002_backfill")]
"""


def backfill_project(
    root: Path,
    *,
    model: str = "Item",
    kwargs: str = "batch_size=100",
    sleep: float = 0,
    atomic: bool = False,
    extra_code: str = "",
    settings: str = "",
    ensure: bool = False,
    apps_extra: str = "",
) -> tuple[MiniProject, str]:
    proj, db = safe_project(root, extra=settings, models=MODELS)
    if apps_extra:
        path = root / "proj" / "settings.py"
        path.write_text(path.read_text() + apps_extra)
    mig = root / "shop" / "migrations"
    (mig / "0001_initial.py").write_text(INITIAL)
    (mig / "0002_backfill.py").write_text(
        BACKFILL.format(
            sleep=sleep,
            atomic=atomic,
            model=model,
            kwargs=kwargs,
            extra_code=textwrap.dedent(extra_code),
        )
    )
    if ensure:
        (mig / "0003_ensure.py").write_text(ENSURE)
    return proj, db


def seed(db: str, table: str, count: int) -> None:
    if table == "shop_token":
        query(
            db,
            f"INSERT INTO {table} (id, n) SELECT gen_random_uuid(), 0 FROM generate_series(1, %s)",
            (count,),
        )
    else:
        query(db, f"INSERT INTO {table} (n) SELECT 0 FROM generate_series(1, %s)", (count,))


def counts(db: str, table: str = "shop_item") -> dict[int, int]:
    """n -> how many rows have it."""
    return dict(query(db, f"SELECT n, count(*) FROM {table} GROUP BY n"))  # type: ignore[arg-type]
