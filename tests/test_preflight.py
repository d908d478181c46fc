"""migrate's preflight: the whole plan judged by the rule engine before anything is applied;
the apply-time backstop; the verifier and migrate agreeing on every rule case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.safety_helpers import INITIAL, migration, query, safe_project
from tests.test_safety import RECIPES, REFUSED

FIRST = [("shop", "0001_initial")]
OTHER = 'migrations.CreateModel("Other", [("id", models.BigAutoField(primary_key=True))]),'
UNSAFE = 'migrations.AddField("item", "qty", models.IntegerField(default=0)),'


def _applied(db: str) -> set[str]:
    return {n for (n,) in query(db, "SELECT name FROM django_migrations WHERE app = 'shop'")}


def _deployed(tmp_path: Path, extra: str = ""):  # type: ignore[no-untyped-def]
    """0001 applied (shop_item exists, with rows); 0002 safe, 0003 unsafe on shop_item."""
    proj, db = safe_project(tmp_path / "p", extra=extra)
    migration(proj, "0001_initial", [], INITIAL)
    assert proj.manage("migrate", "shop", "-v", "0").returncode == 0
    query(db, "INSERT INTO shop_item (name) VALUES ('a')")
    migration(proj, "0002_other", FIRST, OTHER)
    migration(proj, "0003_qty", [("shop", "0002_other")], UNSAFE)
    return proj, db


def _assert_refused_before_anything(result, db: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 1, result.out + result.err
    assert "Traceback" not in result.err
    assert "shop.0003_qty" in result.err
    assert "[not-null-without-db-default]" in result.err
    assert "0003_qty.py:" in result.err  # file:line
    assert "[not-null-without-db-default] fix: Give the field `db_default=" in result.err
    assert "--explain not-null-without-db-default` for why and the full recipe" in result.err
    assert "Applying" not in result.out
    # Nothing applied: not even the safe migration before the unsafe one.
    assert _applied(db) == {"0001_initial"}
    assert query(db, "SELECT to_regclass('shop_other')") == [(None,)]


@pytest.mark.parametrize(
    "args",
    [
        ("migrate",),
        ("migrate", "shop"),
        ("migrate", "shop", "0003_qty"),
        ("migrate", "--pre-deploy"),
    ],
)
def test_plan_with_safe_then_unsafe_applies_nothing(tmp_path: Path, args: tuple[str, ...]) -> None:
    proj, db = _deployed(tmp_path)
    _assert_refused_before_anything(proj.manage(*args), db)


def test_every_finding_is_listed(tmp_path: Path) -> None:
    proj, db = _deployed(tmp_path)
    migration(
        proj,
        "0004_rename",
        [("shop", "0003_qty")],
        'migrations.RenameField("item", "name", "title"),',
    )
    result = proj.manage("migrate", "shop")
    _assert_refused_before_anything(result, db)
    assert "shop.0004_rename" in result.err and "[rename-column]" in result.err


def test_applying_only_the_safe_part_works(tmp_path: Path) -> None:
    proj, db = _deployed(tmp_path)
    result = proj.manage("migrate", "shop", "0002_other")
    assert result.returncode == 0, result.err
    assert _applied(db) == {"0001_initial", "0002_other"}


def test_tables_created_in_the_plan_are_new(tmp_path: Path) -> None:
    """From an empty database every table of the plan is new: the same AddField passes."""
    proj, db = safe_project(tmp_path / "p")
    migration(proj, "0001_initial", [], INITIAL)
    migration(proj, "0002_other", FIRST, OTHER)
    migration(proj, "0003_qty", [("shop", "0002_other")], UNSAFE)
    result = proj.manage("migrate", "shop")
    assert result.returncode == 0, result.err
    assert _applied(db) == {"0001_initial", "0002_other", "0003_qty"}


def test_plan_and_check_show_the_findings(tmp_path: Path) -> None:
    proj, db = _deployed(tmp_path)
    result = proj.manage("migrate", "--plan")
    assert result.returncode == 0, result.err
    assert "[not-null-without-db-default]" in result.out and "0003_qty.py:" in result.out
    assert "migrate would refuse this plan" in result.out
    result = proj.manage("migrate", "--check")
    assert result.returncode == 1
    assert "[not-null-without-db-default]" in result.out
    assert _applied(db) == {"0001_initial"}


def test_backstop_refuses_when_no_preflight_ran(tmp_path: Path) -> None:
    """Applied without migrate's command (e.g. a test runner's executor), the editor judges
    each checked migration with the engine before running it."""
    proj, db = _deployed(tmp_path)
    script = (
        "from django.db import connection\n"
        "from django.db.migrations.executor import MigrationExecutor\n"
        "from migtools.errors import UnsafeMigrationError\n"
        "try:\n"
        "    MigrationExecutor(connection).migrate([('shop', '0003_qty')])\n"
        "except UnsafeMigrationError as exc:\n"
        "    print('REFUSED', exc.rule)\n"
        "    print(exc)\n"
    )
    result = proj.manage("shell", "-c", script)
    assert result.returncode == 0, result.err
    assert "REFUSED not-null-without-db-default" in result.out
    assert "0003_qty.py:" in result.out and "[not-null-without-db-default] fix: " in result.out
    # The executor applied the safe one first (no preflight there); the unsafe one was
    # refused before its SQL ran, and its transaction left nothing behind.
    assert _applied(db) == {"0001_initial", "0002_other"}
    columns = query(
        db, "SELECT column_name FROM information_schema.columns WHERE table_name = 'shop_item'"
    )
    assert ("qty",) not in columns


CASES = {
    **{f"refused:{k}": (v + ",", True) for k, v in REFUSED.items()},
    **{f"recipe:{k}": v for k, v in RECIPES.items()},
    "recipe:index concurrently (atomic)": (RECIPES["index concurrently"][0], True),
    "recipe:fk not valid (atomic)": (RECIPES["fk not valid"][0], True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_verifier_errors_exactly_when_migrate_refuses(tmp_path: Path, case: str) -> None:
    """Same settings, same database state: an error-level finding about the database from
    verify_migrations exactly when migrate refuses; where migrate's preflight passes, the
    apply-time backstop (which judges every checked migration again) never fires."""
    proj, db = safe_project(tmp_path / "p")
    migration(proj, "0001_initial", [], INITIAL)
    assert proj.manage("migrate", "shop", "-v", "0").returncode == 0
    query(db, "INSERT INTO shop_item (name) VALUES ('a'), ('b')")
    ops, atomic = CASES[case]
    migration(proj, "0002_step", FIRST, ops, atomic=atomic)
    verified = proj.manage("verify_migrations", "shop", "--unapplied", "--format", "json")
    assert "Traceback" not in verified.err, verified.err
    findings = json.loads(verified.out)["findings"]
    errors = {f["rule"] for f in findings if f["level"] == "error" and f["about"] == "database"}
    result = proj.manage("migrate", "shop")
    assert "Traceback" not in result.err, result.err
    if errors:
        assert result.returncode == 1, (case, errors, result.out)
        assert "refused before applying anything" in result.err
        for rule in errors:
            assert f"[{rule}]" in result.err
        assert _applied(db) == {"0001_initial"}
    else:
        assert result.returncode == 0, (case, result.err)
        assert _applied(db) == {"0001_initial", "0002_step"}


def test_delete_without_pending_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    proj, _db = safe_project(tmp_path / "p")
    migration(proj, "0001_initial", [], INITIAL)
    migration(
        proj,
        "0002_step",
        FIRST,
        'SafeRemoveField("item", "name", deletion_action=DeletionAction.DELETE),',
    )
    result = proj.manage("verify_migrations", "shop", "--format", "json")
    assert result.returncode == 1 and "Traceback" not in result.err, result.err
    (finding,) = [f for f in json.loads(result.out)["findings"] if f["migration"] == "0002_step"]
    assert finding["rule"] == "drop-column" and finding["level"] == "error"
    assert "needs the field removed from the state first" in finding["message"]
    assert str(finding["path"]).endswith("0002_step.py") and finding["line"]


IMPORTS_IN_BODY = """\
def forwards(apps, schema_editor):
    from shop.models import Item

    Item.objects.update(name="x")
"""


def test_run_python_importing_models_in_its_body(tmp_path: Path) -> None:
    """Read from the function's AST: the function is never run (it would fail here)."""
    proj, _db = safe_project(
        tmp_path / "p",
        models="""\
        from django.db import models


        class Item(models.Model):
            name = models.CharField(max_length=20)
        """,
    )
    migration(proj, "0001_initial", [], INITIAL)
    path = proj.root / "shop" / "migrations" / "0002_step.py"
    migration(
        proj, "0002_step", FIRST, "migrations.RunPython(forwards, migrations.RunPython.noop),"
    )
    source = path.read_text()
    head, _, rest = source.partition("\n\nclass Migration")
    path.write_text(f"{head}\n\n{IMPORTS_IN_BODY}\n\nclass Migration{rest}")
    result = proj.manage("verify_migrations", "shop", "0002_step", "--format", "json")
    assert "Traceback" not in result.err, result.err
    rules = {f["rule"] for f in json.loads(result.out)["findings"]}
    assert "run-python-imports-model" in rules
    # A repository rule: migrate does not refuse it.
    assert proj.manage("migrate", "shop").returncode == 0


def test_pending_not_null_is_refused_by_the_preflight(tmp_path: Path) -> None:
    """MOVE_TO_PENDING runs no SQL, but its own refusal is a finding before anything runs:
    the safe migration before it is not applied either."""
    proj, db = safe_project(tmp_path / "p")
    migration(proj, "0001_initial", [], INITIAL)
    assert proj.manage("migrate", "shop", "-v", "0").returncode == 0
    migration(proj, "0002_other", FIRST, OTHER)
    migration(
        proj,
        "0003_pending",
        [("shop", "0002_other")],
        'SafeRemoveField("item", "name", deletion_action=DeletionAction.MOVE_TO_PENDING),',
    )
    verified = proj.manage("verify_migrations", "shop", "--format", "json")
    rules = {
        f["rule"] for f in json.loads(verified.out)["findings"] if f["migration"] == "0003_pending"
    }
    assert rules == {"not-null-without-db-default"}
    result = proj.manage("migrate", "shop")
    assert result.returncode == 1
    assert "shop.0003_pending" in result.err and "NOT NULL field without db_default" in result.err
    assert _applied(db) == {"0001_initial"}
    sql = proj.manage("sqlmigrate", "shop", "0003_pending")
    assert "-- (no-op)" in sql.out  # state only, as Django prints it
    assert "CANNOT BE WRITTEN AS SQL" not in sql.out


# -- judge only what is checked (issue 21, item 2) ------------------------------------------

SPY = """\
from pathlib import Path

from django.db.migrations.operations.base import Operation


class Spy(Operation):
    \"\"\"Appends its tag to SPY_LOG each time its SQL is collected.\"\"\"

    reduces_to_sql = True
    reversible = True

    def __init__(self, tag):
        self.tag = tag

    def deconstruct(self):
        return "Spy", [self.tag], {}

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.collect_sql:
            log = Path(__file__).resolve().parent.parent / "spy.log"
            with log.open("a") as f:
                f.write(self.tag + "\\n")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        pass
"""


def _spied(proj, name: str, deps: list[tuple[str, str]], ops: str, *, checked: bool) -> None:  # type: ignore[no-untyped-def]
    base = "CheckedMigration" if checked else "migrations.Migration"
    attrs = "    is_post_deployment = False\n" if checked else ""
    proj.write(
        f"shop/migrations/{name}.py",
        "from django.db import migrations, models\n\nfrom migtools import CheckedMigration\n"
        f"from shop.spy import Spy\n\n\nclass Migration({base}):\n{attrs}"
        f"    dependencies = {deps!r}\n    operations = [\n        {ops}\n    ]\n",
    )


def test_baselined_and_unchecked_migrations_are_not_collected(tmp_path: Path) -> None:
    """Baselined history (plain Migrations holding RunSQL) is not collected by the preflight
    (only its state advances); the checked migration after it is, and a table an unjudged
    migration of the plan creates counts as new for it."""
    proj, db = safe_project(tmp_path / "p", extra='MIGTOOLS_BASELINE = {"shop": "0002_old"}')
    proj.write("shop/spy.py", SPY)
    _spied(
        proj,
        "0001_initial",
        [],
        'Spy("0001"), ' + INITIAL.strip().rstrip(","),
        checked=False,
    )
    _spied(
        proj,
        "0002_old",
        FIRST,
        'Spy("0002"), migrations.RunSQL("SELECT 1", migrations.RunSQL.noop), '
        'migrations.CreateModel("Old", [("id", models.BigAutoField(primary_key=True))])',
        checked=False,
    )
    # Checked: NOT NULL with a default on shop_old, a table created by a baselined migration
    # of the same plan: new, so nothing refuses.
    _spied(
        proj,
        "0003_new",
        [("shop", "0002_old")],
        'Spy("0003"), migrations.AddField("old", "qty", models.IntegerField(default=0))',
        checked=True,
    )
    result = proj.manage("migrate", "shop", "-v", "0")
    assert result.returncode == 0, result.out + result.err
    # Collected: 0003 by the preflight and by the backstop as it applies; never 0001/0002.
    assert (proj.root / "spy.log").read_text().split() == ["0003", "0003"]
    assert _applied(db) == {"0001_initial", "0002_old", "0003_new"}


def test_plan_with_nothing_checked_loads_nothing(tmp_path: Path) -> None:
    """``judge_plan`` on a plan without a checked migration builds no loader."""
    from django.db import connection, migrations

    from migtools.safety.preflight import judge_plan

    plain = migrations.Migration("0001_initial", "ledger")  # ledger is not managed

    def loader() -> object:
        raise AssertionError("the loader was built")

    result = judge_plan(connection, loader, [(plain, False)])  # type: ignore[arg-type]
    assert result.findings == [] and result.new_tables == frozenset()


def test_preflight_reads_the_state_cache(tmp_path: Path) -> None:
    """migrate's preflight stores the applied history's state (content-keyed) and the next
    run reads it: refused the same way both times, and with the cache off too."""
    proj, db = _deployed(tmp_path)
    pycache = proj.root / "shop" / "migrations" / "__pycache__"
    _assert_refused_before_anything(proj.manage("migrate", "shop"), db)
    stored = sorted(pycache.glob("migtools-state-*.pickle"))
    assert len(stored) == 1
    first = proj.manage("migrate", "shop")
    _assert_refused_before_anything(first, db)
    assert sorted(pycache.glob("migtools-state-*.pickle")) == stored
    stored[0].write_bytes(b"not a pickle")  # unreadable: a miss, replayed and stored again
    _assert_refused_before_anything(proj.manage("migrate", "shop"), db)
    assert stored[0].read_bytes() != b"not a pickle"


@pytest.mark.parametrize("what", ["field", "model"])
def test_unapplying_a_delete_without_what_it_dropped_is_one_line(tmp_path: Path, what: str) -> None:
    """A DELETE phase written by hand without field=/fields=: migrating back past it is
    refused in one line naming the migration and the fix, before anything is unapplied."""
    proj, db = safe_project(tmp_path / "p")
    migration(proj, "0001_initial", [], INITIAL)
    if what == "field":
        pending = (
            'migrations.AlterField("item", "name", models.CharField(max_length=20, null=True)),'
            '\nSafeRemoveField("item", "name", deletion_action=DeletionAction.MOVE_TO_PENDING),'
        )
        delete = 'SafeRemoveField("item", "name", deletion_action=DeletionAction.DELETE),'
        needs = "its SafeRemoveField(DELETE) of shop.item.name has no field="
    else:
        pending = 'SafeDeleteModel("Item", deletion_action=DeletionAction.MOVE_TO_PENDING),'
        delete = 'SafeDeleteModel("Item", deletion_action=DeletionAction.DELETE),'
        needs = "its SafeDeleteModel(DELETE) of shop.Item has no fields="
    migration(proj, "0002_pending", FIRST, pending)
    migration(proj, "0003_other", [("shop", "0002_pending")], OTHER)
    migration(proj, "0004_delete", [("shop", "0003_other")], delete, post=True)
    assert proj.manage("migrate", "shop", "-v", "0").returncode == 0
    result = proj.manage("migrate", "shop", "0002_pending")
    assert result.returncode == 1, result.out + result.err
    assert "Traceback" not in result.err and "IrreversibleError" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("CommandError: Cannot unapply shop.0004_delete, nothing was ")
    assert needs in lines[0]
    assert "`makemigrations --finish-removal` writes" in lines[0]
    assert "or migrate back no further than shop.0004_delete." in lines[0]
    # Nothing unapplied: not even 0003, which is reversible and comes first.
    assert _applied(db) == {"0001_initial", "0002_pending", "0003_other", "0004_delete"}
    assert query(db, "SELECT to_regclass('shop_other')") != [(None,)]
