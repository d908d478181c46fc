"""Identifiers that need quoting (issue 15 item 4): a table ``it's tab`` and an index
``odd'idx`` go through the lock-light DDL's idempotency checks and RunBackfill on a real
server, first run and re-run."""

from __future__ import annotations

from pathlib import Path

from tests.safety_helpers import migration, query, safe_project

INITIAL = """\
migrations.CreateModel(
    name="Odd",
    fields=[
        ("id", models.BigAutoField(primary_key=True)),
        ("name", models.CharField(max_length=20)),
    ],
    options={"db_table": "it's tab"},
),
"""
LOCK_LIGHT = """\
migrations.AddField("odd", "n", models.IntegerField(null=True)),
migrations.AddIndex("odd", models.Index(fields=["name"], name="odd'idx")),
migrations.AddConstraint(
    "odd", models.CheckConstraint(condition=models.Q(n__gte=0), name="odd'check")
),
"""
BACKFILL = """\
RunBackfill("shop.Odd", bump, batch_size=2),
"""
BUMP = """\
def bump(apps, batch):
    batch.update(n=7)


"""


def test_odd_names_apply_and_reapply(tmp_path: Path) -> None:
    proj, db = safe_project(tmp_path / "p")
    migration(proj, "0001_initial", [], INITIAL)
    assert proj.manage("migrate", "shop", "-v", "0").returncode == 0
    query(db, """INSERT INTO "it's tab" (name) SELECT 'n' || g FROM generate_series(1, 5) g""")
    migration(proj, "0002_light", [("shop", "0001_initial")], LOCK_LIGHT, atomic=False, post=True)
    path = proj.root / "shop" / "migrations" / "0003_backfill.py"
    migration(proj, "0003_backfill", [("shop", "0002_light")], BACKFILL, atomic=False, post=True)
    text = path.read_text().replace(
        "from migtools.operations import", "from migtools.operations import RunBackfill,"
    )
    path.write_text(text.replace("\n\nclass Migration", f"\n\n{BUMP}class Migration"))
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.out + result.err
    assert "Traceback" not in result.err
    assert query(db, """SELECT count(*) FROM "it's tab" WHERE n = 7""") == [(5,)]
    index = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)"
    assert query(db, index, ('"odd\'idx"',)) == [(True,)]
    check = "SELECT convalidated FROM pg_constraint WHERE conname = %s"
    assert query(db, check, ("odd'check",)) == [(True,)]
    # A re-run of the lock-light migration (as after an interruption): every idempotency
    # check finds its object and skips the statement.
    query(db, "DELETE FROM django_migrations WHERE name IN ('0002_light', '0003_backfill')")
    query(db, "DELETE FROM migtools_backfill")
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.out + result.err
    assert query(db, index, ('"odd\'idx"',)) == [(True,)]
    assert query(db, check, ("odd'check",)) == [(True,)]
    assert query(db, """SELECT count(*) FROM "it's tab" WHERE n = 7""") == [(5,)]
