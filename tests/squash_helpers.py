"""A small project with a history worth squashing: a model, a field, a data migration (a
RunPython with its migration test, and an elidable RunSQL), then an indexed field and a check
constraint; plus a second app whose migration depends on one the squash replaces."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.miniproject import MiniProject, make_project

HEAD = (
    "from django.db import migrations, models\n\nfrom migtools import CheckedMigration\n\n\n"
    "class Migration(CheckedMigration):\n    is_post_deployment = False\n"
)

MIGRATIONS = {
    "0001_initial": HEAD
    + """    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Item",
            fields=[
                ("id", models.BigAutoField(
                    auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                )),
                ("name", models.CharField(max_length=20)),
            ],
        ),
    ]
""",
    "0002_add_qty": HEAD
    + """    dependencies = [("shop", "0001_initial")]
    operations = [migrations.AddField("item", "qty", models.IntegerField(null=True))]
""",
    "0003_fill_qty": "import shop.data\n"
    + HEAD
    + """    dependencies = [("shop", "0002_add_qty")]
    is_post_deployment = True  # a data migration: after the deploy
    ignore_rules = {"run-sql-not-safe": "a one-off data fix"}
    operations = [
        migrations.RunPython(shop.data.fill_qty, migrations.RunPython.noop),
        migrations.RunSQL(
            "UPDATE shop_item SET qty = 0 WHERE qty IS NULL", migrations.RunSQL.noop,
            elidable=True,
        ),
    ]
""",
    "0004_code": HEAD
    + """    dependencies = [("shop", "0003_fill_qty")]
    operations = [
        migrations.AddField(
            "item", "code", models.CharField(max_length=5, db_index=True, null=True)
        ),
        migrations.AddConstraint(
            "item", models.CheckConstraint(condition=models.Q(qty__gte=0), name="qty_gte_0")
        ),
    ]
""",
}

MODELS = """\
from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=20)
    qty = models.IntegerField(null=True)
    code = models.CharField(max_length=5, db_index=True, null=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(qty__gte=0), name="qty_gte_0")]
"""

DATA = """\
def fill_qty(apps, schema_editor):
    Item = apps.get_model("shop", "Item")
    Item.objects.filter(qty__isnull=True).update(qty=1)
"""

MIGRATION_TEST = """\
from migtools.testing import TestMigrations


class FillQtyTest(TestMigrations):
    app = "shop"
    migrate_from = "0002_add_qty"
    migrate_to = "0003_fill_qty"

    def setup_before_migration(self, apps):
        apps.get_model("shop", "Item").objects.create(name="a")

    def test_filled(self):
        Item = self.apps.get_model("shop", "Item")
        assert Item.objects.get().qty == 1


class CodeTest(TestMigrations):
    app = "shop"
    migrate_from = "0003_fill_qty"
    migrate_to = "0004_code"

    def test_code_column(self):
        Item = self.apps.get_model("shop", "Item")
        assert Item.objects.create(name="b", qty=2, code="x").code == "x"
"""

BILLING_MODELS = """\
from django.db import models


class Invoice(models.Model):
    item = models.ForeignKey("shop.Item", on_delete=models.CASCADE)
"""

BILLING_0001 = (
    HEAD
    + """    initial = True
    dependencies = [("shop", "0002_add_qty")]
    operations = [
        migrations.CreateModel(
            name="Invoice",
            fields=[
                ("id", models.BigAutoField(
                    auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                )),
                ("item", models.ForeignKey(on_delete=models.CASCADE, to="shop.item")),
            ],
        ),
    ]
"""
)


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout


def squash_project(root: Path, *, billing: bool = False, with_git: bool = False) -> MiniProject:
    apps = ("shop", "billing") if billing else ("shop",)
    proj = make_project(root, apps=apps, extra_settings="MIGTOOLS_REQUIRE_NAME = False")
    proj.write("shop/models.py", MODELS)
    proj.write("shop/data.py", DATA)
    for name, text in MIGRATIONS.items():
        proj.write(f"shop/migrations/{name}.py", text)
    proj.write("shop/migrations/__init__.py", "")
    proj.write("tests/__init__.py", "")
    proj.write("tests/test_shop_migrations.py", MIGRATION_TEST)
    if billing:
        proj.write("billing/models.py", BILLING_MODELS)
        proj.write("billing/migrations/__init__.py", "")
        proj.write("billing/migrations/0001_initial.py", BILLING_0001)
    # A database of its own: its test database (pytest-django, the scratch databases of
    # verify_squashes) is then named after it, never after the outer test session's.
    own_database(proj, "sq_" + re.sub(r"[^a-z0-9]+", "_", root.parent.name.lower())[:40])
    result = proj.manage("migrations_lockfile")
    assert result.returncode == 0, result.err
    if with_git:
        proj.write(".gitignore", "__pycache__/\npytest.ini\n")
        git(root, "init", "-q", "-b", "main")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "history")
    return proj


def squash(proj: MiniProject, *args: str) -> Path:
    result = proj.manage("squashmigrations", "shop", "0004", "--noinput", *args)
    assert result.returncode == 0, result.err + result.out
    path = proj.root / "shop/migrations/0001_squashed_0004_code.py"
    assert path.exists(), result.out
    return path


def run_pytest(proj: MiniProject, *args: str) -> subprocess.CompletedProcess[str]:
    """``pytest --migrations`` in the project (pytest-django, the project's settings)."""
    import os
    import sys

    (proj.root / "pytest.ini").write_text(
        "[pytest]\nDJANGO_SETTINGS_MODULE = proj.settings\npythonpath = .\n"
        "addopts = -p no:cacheprovider\n"
    )
    env = {**os.environ, "PYTHONPATH": str(proj.root)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--migrations", "-q", *args],
        cwd=proj.root,
        env=env,
        capture_output=True,
        text=True,
    )


def own_database(proj: MiniProject, name: str) -> str:
    """Point the project at a new database of its own (dropped first if left over)."""
    import os

    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    settings = proj.root / "proj/settings.py"
    settings.write_text(settings.read_text() + f"\nDATABASES['default']['NAME'] = {name!r}\n")
    return name
