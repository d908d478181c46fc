"""Adopting migtools in an existing project (issue 16 item 1, issue 21 item 3): a history of
plain ``migrations.Migration`` files holding RunSQL, RunPython and an index on a large table;
``migrations_lockfile --adopt`` records the baseline; ``migrate`` from empty, ``manage.py test``
and pytest-django then build the database; a migration written after adoption is checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.miniproject import MiniProject
from tests.safety_helpers import migration, query, safe_project

HISTORY = [
    (
        "0001_initial",
        """\
migrations.CreateModel(
    name="Item",
    fields=[
        ("id", models.BigAutoField(primary_key=True)),
        ("name", models.CharField(max_length=20)),
        ("code", models.CharField(max_length=20, null=True)),
    ],
),
""",
    ),
    ("0002_seed", "migrations.RunSQL(\"INSERT INTO shop_item (name) VALUES ('a')\"),"),
    (
        "0003_codes",
        "migrations.RunPython(lambda apps, editor: "
        "apps.get_model('shop', 'Item').objects.update(code='x')),",
    ),
    (
        "0004_code_index",
        'migrations.AddIndex("item", models.Index(fields=["code"], name="item_code_idx")),',
    ),
]

EXTRA = 'MIGTOOLS_LARGE_TABLES = ["shop_item"]\n'

MODELS = """\
from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=20)
    code = models.CharField(max_length=20, null=True)

    class Meta:
        indexes = [models.Index(fields=["code"], name="item_code_idx")]
"""

DJANGO_TEST = """\
from django.test import TestCase

from shop.models import Item


class ItemTests(TestCase):
    def test_seeded_table_exists(self):
        Item.objects.create(name="b")
        self.assertEqual(Item.objects.filter(name="b").count(), 1)
"""

PYTEST_TEST = """\
import pytest

from shop.models import Item


@pytest.mark.django_db
def test_item():
    Item.objects.create(name="c")
    assert Item.objects.count() >= 1
"""


def _project(tmp_path: Path) -> tuple[MiniProject, str]:
    proj, db = safe_project(tmp_path / "p", extra=EXTRA, models=MODELS)
    previous: list[tuple[str, str]] = []
    for name, ops in HISTORY:
        migration(proj, name, previous, ops, base="migrations.Migration")
        previous = [("shop", name)]
    return proj, db


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "migtools.cli", *args],
        cwd=root,
        capture_output=True,
        text=True,
    )


def _applied(db: str) -> set[str]:
    if query(db, "SELECT to_regclass('django_migrations')") == [(None,)]:
        return set()
    return {n for (n,) in query(db, "SELECT name FROM django_migrations WHERE app = 'shop'")}


def test_refusal_before_adoption_is_one_line_naming_adopt(tmp_path: Path) -> None:
    proj, db = _project(tmp_path)
    result = proj.manage("migrate")
    assert result.returncode == 1, result.out + result.err
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    refusal = [line for line in lines if "refused" in line]
    assert len(refusal) == 1, result.err
    assert "manage.py migrations_lockfile --adopt" in refusal[0]
    assert "4 missing-is-post-deployment" in refusal[0] and "run-sql-not-safe" in refusal[0]
    assert "Why:" not in result.err and "0002_seed.py" not in result.err  # no file list
    assert _applied(db) == set()


def test_adopt_then_migrate_test_db_and_new_migrations_checked(tmp_path: Path) -> None:
    proj, db = _project(tmp_path)
    adopted = proj.manage("migrations_lockfile", "--adopt")
    assert adopted.returncode == 0, adopted.err
    assert "1 app(s) adopted" in adopted.out
    baseline = proj.root / "migrations_baseline.txt"
    assert "\nshop: 0004_code_index\n" in baseline.read_text()
    assert proj.lockfile.exists()  # the lockfile is written too
    # Once: a second run changes nothing.
    again = proj.manage("migrations_lockfile", "--adopt")
    assert again.returncode == 0 and "up to date" in again.out

    # migrate from empty applies the whole pre-adoption history.
    result = proj.manage("migrate")
    assert result.returncode == 0, result.out + result.err
    assert _applied(db) == {name for name, _ops in HISTORY}

    # The lockfile tools keep it true; the settings-free check still works.
    assert proj.manage("migrations_lockfile", "--check").returncode == 0
    for git in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "adopt"]):
        subprocess.run(["git", *git], cwd=proj.root, check=True, capture_output=True)
    cli = _cli(proj.root, "lockfile", "--check")
    assert cli.returncode == 0, cli.stdout + cli.stderr

    # Test databases: Django's runner and pytest-django build them through migrate.
    proj.write("shop/tests.py", DJANGO_TEST)
    tested = proj.manage("test", "shop", "--noinput", "-v", "1")
    assert tested.returncode == 0, tested.out + tested.err
    assert "OK" in tested.err
    proj.write("test_pytest_item.py", PYTEST_TEST)
    proj.write("pytest.ini", "[pytest]\nDJANGO_SETTINGS_MODULE = proj.settings\n")
    pytested = proj.python("-m", "pytest", "-q", "-p", "no:cacheprovider", "--create-db")
    assert pytested.returncode == 0, pytested.out + pytested.err
    assert "1 passed" in pytested.out

    # A plain migrations.Migration written after adoption is checked: RemoveField refused.
    migration(
        proj,
        "0005_drop_code",
        [("shop", "0004_code_index")],
        'migrations.RemoveField("item", "code"),',
        base="migrations.Migration",
    )
    refused = proj.manage("migrate")
    assert refused.returncode == 1, refused.out + refused.err
    assert "0005_drop_code" in refused.err and "[drop-column]" in refused.err
    assert "--adopt" not in refused.err
    assert _applied(db) == {name for name, _ops in HISTORY}


def test_setting_overrides_the_recorded_baseline(tmp_path: Path) -> None:
    proj, _db = _project(tmp_path)
    assert proj.manage("migrations_lockfile", "--adopt").returncode == 0
    settings = proj.root / "proj" / "settings.py"
    settings.write_text(
        settings.read_text() + 'MIGTOOLS_BASELINE = {"shop": "0001_initial"}\n',
    )
    result = proj.manage("migrate", "--plan")
    assert "0002_seed" in result.out and "[run-sql-not-safe]" in result.out, result.out
    assert "0001_initial" not in result.out.split("Planned operations")[0]


def test_check_reports_a_baseline_naming_a_missing_migration(tmp_path: Path) -> None:
    proj, _db = _project(tmp_path)
    assert proj.manage("migrations_lockfile", "--adopt").returncode == 0
    baseline = proj.root / "migrations_baseline.txt"
    baseline.write_text(baseline.read_text().replace("0004_code_index", "0004_renamed"))
    result = proj.manage("migrations_lockfile", "--check")
    assert result.returncode == 1
    assert "shop: baseline names '0004_renamed'" in result.err
    assert "Traceback" not in result.err
