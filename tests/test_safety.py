"""Safety on apply, end to end: a real project, real PostgreSQL, ``manage.py migrate``."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from migtools.safety.lock import ADVISORY_LOCK_NAME
from tests.safety_helpers import INITIAL, connect, migration, query, safe_project

FIRST = [("shop", "0001_initial")]
SECOND = [("shop", "0002_step")]


def _project(tmp_path: Path, extra: str = ""):  # type: ignore[no-untyped-def]
    proj, db = safe_project(tmp_path / "p", extra=extra)
    migration(proj, "0001_initial", [], INITIAL)
    result = proj.manage("migrate", "shop", "-v", "0")
    assert result.returncode == 0, result.err
    query(db, "INSERT INTO shop_item (name) VALUES ('a'), ('b')")
    return proj, db


REFUSED = {
    "not-null-without-db-default": 'migrations.AddField("item", "qty", models.IntegerField())',
    # NOT NULL with default= is not-null-without-db-default (the verifier's reading too).
    "default-not-db-default": (
        'migrations.AddField("item", "qty", models.IntegerField(null=True, default=1))'
    ),
    "column-type-change": 'migrations.AlterField("item", "name", models.IntegerField())',
    "rename-column": 'migrations.RenameField("item", "name", "title")',
    "rename-table": 'migrations.RenameModel("Item", "Product")',
    "drop-column": 'migrations.RemoveField("item", "name")',
    "drop-table": 'migrations.DeleteModel("Item")',
    "run-sql-not-safe": 'migrations.RunSQL("UPDATE shop_item SET name = name")',
    "identifier-too-long": 'migrations.AddField("item", "x", models.IntegerField(null=True, db_column="'
    + "c" * 64
    + '"))',
    "exclusion-constraint": (
        'migrations.AddConstraint("item", __import__("django.contrib.postgres.constraints", '
        'fromlist=["x"]).ExclusionConstraint(name="item_excl", expressions=[("name", "=")]))'
    ),
}


@pytest.mark.parametrize("rule", sorted(REFUSED))
def test_refused_with_why_and_recipe(tmp_path: Path, rule: str) -> None:
    proj, db = _project(tmp_path)
    migration(proj, "0002_step", FIRST, REFUSED[rule] + ",")
    result = proj.manage("migrate", "shop")
    assert result.returncode == 1, result.out + result.err
    assert f"[{rule}]" in result.err
    assert f"[{rule}] fix: " in result.err
    assert f"`manage.py verify_migrations --explain {rule}` for why" in result.err
    # Nothing was applied.
    assert query(db, "SELECT name FROM django_migrations WHERE app = 'shop'") == [("0001_initial",)]


def test_missing_is_post_deployment_and_plain_migration_refused(tmp_path: Path) -> None:
    proj, _db = _project(tmp_path)
    migration(proj, "0002_step", FIRST, "", base="migrations.Migration")
    result = proj.manage("migrate", "shop")
    assert result.returncode == 1
    assert "does not subclass migtools.CheckedMigration" in result.err
    assert "[missing-is-post-deployment]" in result.err


def test_checked_false_opt_out_gets_stock_sql(tmp_path: Path) -> None:
    proj, db = _project(tmp_path)
    migration(proj, "0002_step", FIRST, REFUSED["rename-column"] + ",", extra="checked = False\n")
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.err
    assert query(db, "SELECT title FROM shop_item ORDER BY id") == [("a",), ("b",)]


@pytest.mark.parametrize(
    ("baseline", "ignore", "refused"),
    [
        (True, True, None),
        # Controls: without the baseline / without ignore_rules the same rule fires.
        (False, True, "rename-column"),
        (True, False, "default-not-db-default"),
    ],
)
def test_ignore_rules_and_baseline(
    tmp_path: Path, baseline: bool, ignore: bool, refused: str | None
) -> None:
    proj, db = _project(
        tmp_path, extra='MIGTOOLS_BASELINE = {"shop": "0002_step"}' if baseline else ""
    )
    migration(proj, "0002_step", FIRST, REFUSED["rename-column"] + ",")
    migration(
        proj,
        "0003_more",
        [("shop", "0002_step")],
        REFUSED["default-not-db-default"] + ",",
        extra='ignore_rules = {"default-not-db-default": "tiny table, reviewed"}\n'
        if ignore
        else "",
    )
    result = proj.manage("migrate", "shop")
    if refused is None:
        assert result.returncode == 0, result.err
        assert query(db, "SELECT count(*) FROM django_migrations WHERE app = 'shop'") == [(3,)]
    else:
        assert result.returncode == 1, result.out + result.err
        assert f"[{refused}]" in result.err
        other = {"rename-column", "default-not-db-default"} - {refused}
        assert not any(f"[{rule}]" in result.err for rule in other)
        assert query(db, "SELECT count(*) FROM django_migrations WHERE app = 'shop'") == [(1,)]


RECIPES = {
    "db_default": ('migrations.AddField("item", "qty", models.IntegerField(db_default=1)),', True),
    "widen varchar": (
        'migrations.AlterField("item", "name", models.CharField(max_length=200)),',
        True,
    ),
    "varchar to text": ('migrations.AlterField("item", "name", models.TextField()),', True),
    "rename keeping db_column": (
        'migrations.AlterField("item", "name", models.CharField(max_length=20, db_column="name")),\n'
        'migrations.RenameField("item", "name", "title"),',
        True,
    ),
    "rename model keeping db_table": (
        'migrations.AlterModelTable("item", "shop_item"),\nmigrations.RenameModel("Item", "Product"),',
        True,
    ),
    "safe run sql": (
        'SafeRunSQL("UPDATE shop_item SET name = upper(name)", migrations.RunSQL.noop),',
        True,
    ),
    "index concurrently": (
        'migrations.AddIndex("item", models.Index(fields=["name"], name="item_name_idx")),',
        False,
    ),
    "fk not valid": (
        'migrations.AddField("item", "parent", models.ForeignKey("self", models.SET_NULL, null=True)),',
        False,
    ),
    "check not valid": (
        'migrations.AddConstraint("item", models.CheckConstraint(condition=models.Q(id__gt=0), name="item_id_pos")),',
        False,
    ),
    "set not null": (
        'migrations.AddField("item", "note", models.TextField(null=True)),\n'
        "SafeRunSQL(\"UPDATE shop_item SET note = 'x'\", migrations.RunSQL.noop),\n"
        'migrations.AlterField("item", "note", models.TextField()),',
        False,
    ),
}


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_recipe_applies_and_reverses(tmp_path: Path, recipe: str) -> None:
    proj, db = _project(tmp_path)
    ops, atomic = RECIPES[recipe]
    migration(proj, "0002_step", FIRST, ops, atomic=atomic)
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.err
    assert query(db, "SELECT count(*) FROM shop_item") == [(2,)]
    if recipe == "index concurrently":
        assert query(
            db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'item_name_idx'::regclass"
        ) == [(True,)]
    if recipe in ("fk not valid", "check not valid"):
        assert all(
            v
            for (v,) in query(
                db,
                "SELECT convalidated FROM pg_constraint WHERE conrelid = 'shop_item'::regclass AND contype IN ('f', 'c')",
            )
        )
    if recipe == "set not null":
        assert query(
            db,
            "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'shop_item'::regclass AND attname = 'note'",
        ) == [(True,)]
    result = proj.manage("migrate", "shop", "0001_initial")
    if recipe in ("widen varchar", "varchar to text"):
        # Unapplying runs under the same checks: the narrowing back would rewrite the table.
        assert result.returncode == 1 and "[column-type-change]" in result.err
    else:
        assert result.returncode == 0, result.err


def test_unrefused_in_atomic_migration_index_needs_atomic_false(tmp_path: Path) -> None:
    proj, _db = _project(tmp_path)
    migration(proj, "0002_step", FIRST, RECIPES["index concurrently"][0], atomic=True)
    result = proj.manage("migrate", "shop")
    assert result.returncode == 1
    assert "[index-not-concurrent]" in result.err and "atomic = False" in result.err


@pytest.mark.parametrize(
    ("recipe", "rule"),
    [
        ("index concurrently", "index-not-concurrent"),
        ("fk not valid", "fk-not-valid-missing"),
        ("check not valid", "check-constraint-not-valid-missing"),
        ("set not null", "set-not-null"),
    ],
)
def test_lock_light_ddl_in_atomic_migration_is_refused_and_verified(
    tmp_path: Path, recipe: str, rule: str
) -> None:
    """In a transaction, NOT VALID + VALIDATE (and CONCURRENTLY) lose their point: the lock of
    the first statement is held for the whole scan. migrate refuses; the verifier, which builds
    the same SQL with a collecting editor, reports the same rule."""
    proj, db = _project(tmp_path)
    migration(proj, "0002_step", FIRST, RECIPES[recipe][0], atomic=True)
    verified = proj.manage("verify_migrations", "shop", "0002_step")
    assert verified.returncode == 1
    assert f"[{rule}]" in verified.out + verified.err
    result = proj.manage("migrate", "shop")
    assert result.returncode == 1
    assert f"[{rule}]" in result.err and "atomic = False" in result.err
    assert query(db, "SELECT count(*) FROM django_migrations WHERE name = '0002_step'") == [(0,)]


def test_index_on_large_table_must_be_post_deployment(tmp_path: Path) -> None:
    proj, _db = _project(tmp_path, extra='MIGTOOLS_LARGE_TABLES = ["shop_item"]')
    migration(proj, "0002_step", FIRST, RECIPES["index concurrently"][0], atomic=False)
    result = proj.manage("migrate", "shop")
    assert "[index-on-large-table-not-post-deployment]" in result.err
    migration(proj, "0002_step", FIRST, RECIPES["index concurrently"][0], atomic=False, post=True)
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.err


def _hold_lock(db: str, seconds: float, ready: threading.Event) -> None:
    with connect(db) as conn, conn.transaction():
        conn.execute("LOCK TABLE shop_item IN ACCESS EXCLUSIVE MODE")
        ready.set()
        time.sleep(seconds)


LOCK_SETTINGS = 'MIGTOOLS_LOCK_TIMEOUT = "200ms"\nMIGTOOLS_LOCK_RETRIES = 2'

BLOCKED = {
    "SafeRunSQL": (
        'SafeRunSQL("UPDATE shop_item SET name = name", migrations.RunSQL.noop),',
        False,
    ),
    "RunPython": (
        "migrations.RunPython(lambda apps, se: list(apps.get_model('shop', 'Item').objects.all()), "
        "migrations.RunPython.noop),",
        True,
    ),
}


@pytest.mark.parametrize("kind", sorted(BLOCKED))
def test_blocked_by_lock_fails_after_lock_timeout_and_retries(tmp_path: Path, kind: str) -> None:
    proj, db = _project(tmp_path, extra=LOCK_SETTINGS)
    ops, atomic = BLOCKED[kind]
    migration(proj, "0002_step", FIRST, ops, atomic=atomic)
    ready = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(db, 8.0, ready))
    holder.start()
    ready.wait(5)
    started = time.monotonic()
    result = proj.manage("migrate", "shop")
    elapsed = time.monotonic() - started
    holder.join()
    assert result.returncode == 1, result.out + result.err
    assert "could not get a lock within lock_timeout (200ms)" in result.err
    assert "tried 3 times" in result.err
    assert result.err.count("retry") >= 2
    assert elapsed < 7.0  # 3 x 200ms + 0.1s + 0.2s backoff, plus start-up; not the holder's 8s
    # Once the lock is gone, the same migration applies.
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.err


def _hold_until(db: str, ready: threading.Event, release: threading.Event) -> None:
    with connect(db) as conn, conn.transaction():
        conn.execute("LOCK TABLE shop_item IN ACCESS EXCLUSIVE MODE")
        ready.set()
        release.wait(30)


def test_lock_released_during_retries_then_applies(tmp_path: Path) -> None:
    """The lock is released once migrate has been seen waiting for it (not after a fixed
    time: the preflight's duration on a busy machine would decide the outcome)."""
    proj, db = _project(tmp_path, extra=LOCK_SETTINGS.replace("= 2", "= 5"))
    migration(proj, "0002_step", FIRST, BLOCKED["SafeRunSQL"][0], atomic=False)
    ready, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_until, args=(db, ready, release))
    holder.start()
    ready.wait(5)
    env = {**os.environ, "PYTHONPATH": str(proj.root), "PYTHONWARNINGS": "ignore"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "migrate", "shop"],
        cwd=proj.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Released once the first retry is under way (not after a fixed time: start-up on a
    # loaded machine can outlast it, and then nothing is retried).
    assert proc.stderr is not None
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if "retrying the statement" in line:
                break
    finally:
        release.set()
        holder.join()
    _out, err = proc.communicate(timeout=60)
    err = "".join(seen) + err
    assert proc.returncode == 0, err
    assert "retrying the statement" in err


def test_timeouts_are_set_and_never_leak(tmp_path: Path) -> None:
    proj, db = _project(tmp_path, extra='MIGTOOLS_LOCK_TIMEOUT = "1234ms"')
    migration(
        proj,
        "0002_step",
        FIRST,
        'migrations.RunPython(lambda apps, se: se.execute("CREATE TABLE seen AS SELECT '
        "current_setting('lock_timeout') AS l, current_setting('statement_timeout') AS s\"), "
        "migrations.RunPython.noop),",
        extra="",
    )
    migration(
        proj,
        "0003_after",
        [("shop", "0002_step")],
        'migrations.RunPython(lambda apps, se: se.execute("CREATE TABLE after_run AS SELECT '
        "current_setting('lock_timeout') AS l\"), migrations.RunPython.noop),",
        extra="checked = False\n",
    )
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.err
    assert query(db, "SELECT l, s FROM seen") == [("1234ms", "5s")]
    # An unchecked migration still gets lock_timeout (and no statement_timeout of ours).
    assert query(db, "SELECT l FROM after_run") == [("1234ms",)]


def test_two_phase_field_removal_with_data_forwards_and_backwards(tmp_path: Path) -> None:
    proj, db = _project(tmp_path)
    migration(
        proj,
        "0002_step",
        FIRST,
        'migrations.AddField("item", "note", models.TextField(null=True)),',
    )
    migration(
        proj,
        "0003_pending",
        SECOND,
        'SafeRemoveField("item", "note", deletion_action=DeletionAction.MOVE_TO_PENDING),',
    )
    migration(
        proj,
        "0004_delete",
        [("shop", "0003_pending")],
        'SafeRemoveField("item", "note", deletion_action=DeletionAction.DELETE, '
        "field=models.TextField(null=True)),",
    )
    assert proj.manage("migrate", "shop", "0002_step").returncode == 0
    query(db, "UPDATE shop_item SET note = 'kept'")
    assert proj.manage("migrate", "shop", "0003_pending").returncode == 0
    assert query(db, "SELECT note FROM shop_item") == [("kept",), ("kept",)]  # still there
    query(db, "INSERT INTO shop_item (name) VALUES ('new code')")  # the code no longer writes it
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.err
    cols = query(
        db, "SELECT column_name FROM information_schema.columns WHERE table_name = 'shop_item'"
    )
    assert ("note",) not in cols
    result = proj.manage("migrate", "shop", "0002_step")
    assert result.returncode == 0, result.err
    assert query(db, "SELECT count(*) FROM shop_item WHERE note IS NULL") == [(3,)]


def test_delete_without_pending_is_refused(tmp_path: Path) -> None:
    proj, _db = _project(tmp_path)
    migration(
        proj,
        "0002_step",
        FIRST,
        'SafeRemoveField("item", "name", deletion_action=DeletionAction.DELETE),',
    )
    result = proj.manage("migrate", "shop")
    assert result.returncode == 1
    assert "needs the field removed from the state first" in result.err


def test_pending_not_null_field_is_refused(tmp_path: Path) -> None:
    proj, _db = _project(tmp_path)
    migration(
        proj,
        "0002_step",
        FIRST,
        'SafeRemoveField("item", "name", deletion_action=DeletionAction.MOVE_TO_PENDING),',
    )
    result = proj.manage("migrate", "shop")
    assert result.returncode == 1
    assert (
        "NOT NULL field without db_default" in result.err
        and "--explain not-null-without-db-default" in result.err
    )


def _model_project(tmp_path: Path, extra: str = ""):  # type: ignore[no-untyped-def]
    proj, db = _project(tmp_path, extra=extra)
    migration(
        proj,
        "0002_step",
        FIRST,
        'migrations.CreateModel("Old", [("id", models.BigAutoField(primary_key=True)), '
        '("v", models.IntegerField())]),',
    )
    migration(
        proj,
        "0003_pending",
        SECOND,
        'SafeDeleteModel("Old", deletion_action=DeletionAction.MOVE_TO_PENDING),',
    )
    migration(
        proj,
        "0004_delete",
        [("shop", "0003_pending")],
        'SafeDeleteModel("Old", deletion_action=DeletionAction.DELETE, fields=['
        '("id", models.BigAutoField(primary_key=True)), ("v", models.IntegerField())]),',
    )
    return proj, db


def test_two_phase_model_removal_with_data_forwards_and_backwards(tmp_path: Path) -> None:
    proj, db = _model_project(tmp_path)
    assert proj.manage("migrate", "shop", "0002_step").returncode == 0
    query(db, "INSERT INTO shop_old (v) VALUES (7)")
    assert proj.manage("migrate", "shop", "0003_pending").returncode == 0
    assert query(db, "SELECT v FROM shop_old") == [(7,)]
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.err
    assert query(db, "SELECT to_regclass('shop_old')") == [(None,)]
    result = proj.manage("migrate", "shop", "0003_pending")
    assert result.returncode == 0, result.err
    assert query(db, "SELECT count(*) FROM shop_old") == [(0,)]
    assert proj.manage("migrate", "shop", "0001_initial").returncode == 0


OTHER_DB = """
DATABASES["other"] = {{**DATABASES["default"], "NAME": {other!r}}}
"""


def test_historical_table_routed_to_second_database(tmp_path: Path) -> None:
    from tests.safety_helpers import create_database

    other = create_database()
    proj, db = _model_project(
        tmp_path,
        extra=OTHER_DB.format(other=other) + 'MIGTOOLS_HISTORICAL_TABLES = {"shop_old": "other"}',
    )
    for alias in ("default", "other"):
        assert proj.manage("migrate", "shop", "0003_pending", "--database", alias).returncode == 0
    result = proj.manage("migrate", "shop", "--database", "default")
    assert result.returncode == 0, result.err
    assert query(db, "SELECT to_regclass('shop_old')") == [("shop_old",)]  # not routed here
    result = proj.manage("migrate", "shop", "--database", "other")
    assert result.returncode == 0, result.err
    assert query(other, "SELECT to_regclass('shop_old')") == [(None,)]


def test_unrouted_historical_table_fails_loudly(tmp_path: Path) -> None:
    from tests.safety_helpers import create_database

    other = create_database()
    proj, _db = _model_project(tmp_path, extra=OTHER_DB.format(other=other))
    assert proj.manage("migrate", "shop", "0003_pending").returncode == 0
    result = proj.manage("migrate", "shop")
    assert result.returncode == 1
    assert "Cannot tell which database holds table 'shop_old'" in result.err
    assert "MIGTOOLS_HISTORICAL_TABLES" in result.err


def test_pre_deploy_defers_post_deployment_and_dependents(tmp_path: Path) -> None:
    proj, db = _project(tmp_path)
    migration(proj, "0002_step", FIRST, RECIPES["db_default"][0])
    migration(proj, "0003_index", SECOND, RECIPES["index concurrently"][0], post=True, atomic=False)
    migration(
        proj,
        "0004_after_index",
        [("shop", "0003_index")],
        'migrations.AddField("item", "z", models.IntegerField(null=True)),',
    )
    result = proj.manage("migrate", "--pre-deploy")
    assert result.returncode == 0, result.err
    assert "Applying shop.0002_step... OK" in result.out
    assert "shop.0003_index (post-deployment)" in result.out
    assert "shop.0004_after_index (depends on deferred shop.0003_index)" in result.out
    applied = {n for (n,) in query(db, "SELECT name FROM django_migrations WHERE app = 'shop'")}
    assert applied == {"0001_initial", "0002_step"}
    result = proj.manage("migrate", "shop", "0003_index")
    assert result.returncode == 0, result.err
    result = proj.manage("migrate")
    assert result.returncode == 0, result.err
    assert "Applying shop.0004_after_index... OK" in result.out


def test_concurrent_migrate_waits_for_the_advisory_lock(tmp_path: Path) -> None:
    """A second deploy's migrate waits while another holds the migrate lock, then applies."""
    proj, db = _project(tmp_path)
    migration(proj, "0002_step", FIRST, RECIPES["db_default"][0], atomic=True)
    digest = hashlib.sha256(f"{ADVISORY_LOCK_NAME}:{db}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    env = {**os.environ, "PYTHONPATH": str(proj.root), "PYTHONWARNINGS": "ignore"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    with connect(db) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "migrate", "shop"],
            cwd=proj.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # It waits by polling pg_try_advisory_lock (no blocked lock request to see in
        # pg_locks, no snapshot held): it says so on stderr.
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert "Another migrate is running on this database" in first, first
        time.sleep(1.0)
        assert proc.poll() is None, "migrate did not wait for the advisory lock"
        assert query(db, "SELECT count(*) FROM django_migrations WHERE name = '0002_step'") == [
            (0,)
        ]
        holder.execute("SELECT pg_advisory_unlock(%s)", (key,))
    _out, err = proc.communicate(timeout=60)
    err = first + err
    assert proc.returncode == 0, err
    assert "Another migrate is running on this database" in err
    assert "Got the migrate lock after" in err
    assert query(db, "SELECT count(*) FROM django_migrations WHERE name = '0002_step'") == [(1,)]


def test_migrate_prints_each_system_check_once(tmp_path: Path) -> None:
    proj, _db = _project(tmp_path)
    # A warning to see: an ignore_rules entry naming a rule that does not exist.
    migration(proj, "0002_step", FIRST, "")
    path = proj.root / "shop" / "migrations" / "0002_step.py"
    path.write_text(
        path.read_text().replace(
            "class Migration(CheckedMigration):",
            "class Migration(CheckedMigration):\n    ignore_rules = {'drop-colum': 'typo'}",
        )
    )
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.out + result.err
    assert result.err.count("System check identified") == 1, result.err
    assert result.err.count("ignore_rules names an unknown rule 'drop-colum'") == 1, result.err


class HistoricalOnlyRouter:
    """Answers only the historical assignment (no allow_migrate opinion)."""

    def historical_db_for(self, table: str) -> str | None:
        return {"shop_old": "other", "shop_lost": "nowhere"}.get(table)


def test_resolve_database_asks_the_routers_historical_assignment() -> None:
    from django.test.utils import override_settings

    from migtools.errors import UnroutedTableError
    from migtools.safety.deletion import resolve_database

    with override_settings(DATABASE_ROUTERS=["tests.test_safety.HistoricalOnlyRouter"]):
        assert resolve_database("shop_old", "shop", "old") == "other"
        with pytest.raises(UnroutedTableError, match="'shop_gone'"):
            resolve_database("shop_gone", "shop", "gone")
        with pytest.raises(UnroutedTableError, match="unknown database 'nowhere'"):
            resolve_database("shop_lost", "shop", "lost")
        with override_settings(MIGTOOLS_HISTORICAL_TABLES={"shop_old": "default"}):
            assert resolve_database("shop_old", "shop", "old") == "default"  # the setting wins
