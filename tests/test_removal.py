"""``makemigrations --finish-removal APP``: the DELETE phase of each deployed two-phase removal,
reversible, in one post-deployment migration (``migtools.authoring.removal``)."""

from __future__ import annotations

from pathlib import Path

from migtools.graph import lockfile
from tests.miniproject import MiniProject, make_project
from tests.safety_helpers import SAFE_SETTINGS, create_database, query

MODELS = """\
from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=20)
    note = models.TextField(null=True)
    rank = models.IntegerField(db_default=0)


class Old(models.Model):
    x = models.IntegerField(db_default=1)
"""

AFTER = """\
from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=20)
"""


def _columns(db: str) -> list[str]:
    rows = query(
        db,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'shop_item' "
        "ORDER BY column_name",
    )
    return [name for (name,) in rows]


def _table(db: str, name: str) -> object:
    return query(db, f"SELECT to_regclass('{name}')")[0][0]


def _removed(tmp_path: Path, extra: str = "") -> tuple[MiniProject, str]:
    """0001 (Item with note and rank, Old), 0002 removing note, rank and Old (MOVE_TO_PENDING)."""
    db = create_database()
    proj = make_project(tmp_path / "p", extra_settings=SAFE_SETTINGS.format(db=db, extra=extra))
    models = proj.root / "shop" / "models.py"
    models.write_text(MODELS)
    assert proj.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    models.write_text(AFTER)
    made = proj.manage("makemigrations", "shop", "-n", "remove_old")
    assert made.returncode == 0, made.err
    return proj, db


def test_finish_removal_writes_a_reversible_delete_phase(tmp_path: Path) -> None:
    proj, db = _removed(tmp_path)
    # Not applied yet: nothing is deployed, nothing written.
    before = proj.snapshot()
    result = proj.manage("makemigrations", "--finish-removal", "shop")
    assert result.returncode == 0, result.err
    assert "Not deployed on database 'default' yet, left pending: shop.Old (0002_remove_old)" in (
        result.out
    )
    assert proj.snapshot() == before

    assert proj.manage("migrate", "shop", "-v", "0").returncode == 0
    query(db, "INSERT INTO shop_item (name) VALUES ('a')")
    assert _columns(db) == ["id", "name", "note", "rank"]
    result = proj.manage("makemigrations", "--finish-removal", "shop")
    assert result.returncode == 0, result.err
    assert ": error: [" not in result.out + result.err
    path = proj.root / "shop" / "migrations" / "0003_finish_removal.py"
    source = path.read_text()
    assert "    is_post_deployment = True\n" in source
    assert "SafeDeleteModel(\n            name='Old'," in source
    assert "db_table='shop_old'," in source
    assert "('x', models.IntegerField(db_default=1))" in source
    assert "name='note',\n" in source and "field=models.TextField(null=True)," in source
    assert "name='rank',\n" in source and "field=models.IntegerField(db_default=0)," in source
    assert source.count("DeletionAction['DELETE']") == 3
    assert lockfile.parse(proj.lockfile.read_text())["shop"] == "0003_finish_removal"
    verified = proj.manage("verify_migrations", "shop", "0003")
    assert verified.returncode == 0, verified.out + verified.err
    assert ": error: [" not in verified.out

    # Applied: the column and the table are gone.
    applied = proj.manage("migrate", "shop")
    assert applied.returncode == 0, applied.err
    assert _columns(db) == ["id", "name"]
    assert _table(db, "shop_old") is None
    # Unapplied: they are back (the row keeps its place, the column is nullable / defaulted).
    back = proj.manage("migrate", "shop", "0002")
    assert back.returncode == 0, back.err
    assert _columns(db) == ["id", "name", "note", "rank"]
    assert _table(db, "shop_old") == "shop_old"
    assert query(db, "SELECT name, note, rank FROM shop_item") == [("a", None, 0)]
    assert proj.manage("migrate", "shop", "-v", "0").returncode == 0

    # Nothing left to finish: one line, nothing written.
    before = proj.snapshot()
    again = proj.manage("makemigrations", "--finish-removal", "shop")
    assert again.returncode == 0, again.err
    assert again.out.strip() == (
        "No pending removal in shop: every MOVE_TO_PENDING has its DELETE phase."
    )
    assert proj.snapshot() == before
    assert proj.manage("makemigrations", "--check").returncode == 0


def test_finish_removal_takes_a_name_and_dry_run(tmp_path: Path) -> None:
    proj, _db = _removed(tmp_path)
    assert proj.manage("migrate", "shop", "-v", "0").returncode == 0
    before = proj.snapshot()
    dry = proj.manage("makemigrations", "--finish-removal", "shop", "--dry-run")
    assert dry.returncode == 0, dry.err
    assert "0003_finish_removal.py" in dry.out and "DELETE field note from item" in dry.out
    assert proj.snapshot() == before
    named = proj.manage("makemigrations", "--finish-removal", "shop", "-n", "drop_old_columns")
    assert named.returncode == 0, named.err
    assert (proj.root / "shop" / "migrations" / "0003_drop_old_columns.py").exists()


def test_finish_removal_without_the_database_writes_nothing(tmp_path: Path) -> None:
    proj, _db = _removed(tmp_path, extra="DATABASES['default']['PORT'] = 1")
    before = proj.snapshot()
    result = proj.manage("makemigrations", "--finish-removal", "shop")
    assert result.returncode == 1, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("CommandError: Database 'default' (name ")
    assert "port 1) is unreachable" in lines[0]
    assert proj.snapshot() == before


def test_finish_removal_bad_usage(tmp_path: Path) -> None:
    proj, _db = _removed(tmp_path)
    unknown = proj.manage("makemigrations", "--finish-removal", "nosuch")
    assert unknown.returncode == 2
    assert "No installed app with label 'nosuch'." in unknown.err
    mixed = proj.manage("makemigrations", "shop", "--finish-removal", "shop")
    assert mixed.returncode == 2
    assert "--finish-removal APP takes no other app label" in mixed.err
