from __future__ import annotations

from pathlib import Path

import pytest

from migtools.graph import lockfile
from tests.miniproject import MiniProject, make_project


@pytest.fixture
def project(tmp_path: Path) -> MiniProject:
    proj = make_project(tmp_path / "p", apps=("shop", "billing"))
    result = proj.manage("makemigrations", "shop", "billing", "-n", "initial")
    assert result.returncode == 0, result.err
    return proj


def test_initial_migrations_are_checked_and_locked(project: MiniProject) -> None:
    source = (project.root / "shop/migrations/0001_initial.py").read_text()
    assert "from migtools import CheckedMigration\n" in source
    assert "class Migration(CheckedMigration):\n" in source
    assert "    is_post_deployment = False\n" in source
    assert "# migtools: is_post_deployment says when this migration runs." in source
    compile(source, "0001_initial.py", "exec")
    assert lockfile.parse(project.lockfile.read_text()) == {
        "billing": "0001_initial",
        "shop": "0001_initial",
    }
    assert project.lockfile.read_text().endswith("billing: 0001_initial\n\nshop: 0001_initial\n")


def test_new_migration_moves_the_lockfile_line(project: MiniProject) -> None:
    project.add_model_field("shop", "qty = models.IntegerField(null=True)")
    result = project.manage("makemigrations", "-n", "add_qty")
    assert result.returncode == 0, result.err
    assert (project.root / "shop/migrations/0002_add_qty.py").exists()
    assert lockfile.parse(project.lockfile.read_text())["shop"] == "0002_add_qty"
    assert project.manage("migrations_lockfile", "--check").returncode == 0


def test_missing_name_is_refused_with_exit_2_and_changes_nothing(project: MiniProject) -> None:
    project.add_model_field("shop", "qty = models.IntegerField(null=True)")
    before = project.snapshot()
    result = project.manage("makemigrations")
    assert result.returncode == 2
    assert (
        "Give the migration a name: python manage.py makemigrations shop -n <what_it_does>"
        in result.err
    )
    assert project.snapshot() == before


def test_require_name_off_allows_auto_names(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "p", extra_settings="MIGTOOLS_REQUIRE_NAME = False")
    result = proj.manage("makemigrations", "shop")
    assert result.returncode == 0, result.err
    assert (proj.root / "shop/migrations/0001_initial.py").exists()


def test_no_changes_without_name_is_not_refused(project: MiniProject) -> None:
    result = project.manage("makemigrations")
    assert result.returncode == 0
    assert "No changes detected" in result.out


def test_check_exit_codes(project: MiniProject) -> None:
    assert project.manage("makemigrations", "--check").returncode == 0
    # A stale lockfile: exit 2, reported once (no system-check warning before it).
    project.lockfile.write_text(
        project.lockfile.read_text().replace("shop: 0001_initial", "shop: 0000_old")
    )
    before = project.snapshot()
    result = project.manage("makemigrations", "--check")
    assert result.returncode == 2
    assert result.err.count("0000_old") == 1, result.err
    assert result.err.count("stale") == 1, result.err
    assert "shop: lockfile says '0000_old', latest migration is '0001_initial'" in result.err
    # A model change without a migration wins: exit 1, and nothing is written.
    project.add_model_field("shop", "qty = models.IntegerField(null=True)")
    before = project.snapshot()
    result = project.manage("makemigrations", "--check")
    assert result.returncode == 1
    assert project.snapshot() == before


def test_dry_run_writes_nothing(project: MiniProject) -> None:
    project.add_model_field("shop", "qty = models.IntegerField(null=True)")
    before = project.snapshot()
    result = project.manage("makemigrations", "--dry-run")
    assert result.returncode == 0
    assert "Add field qty to item" in result.out
    assert project.snapshot() == before


def test_empty_migration_is_checked_and_locked(project: MiniProject) -> None:
    result = project.manage("makemigrations", "shop", "--empty", "-n", "backfill")
    assert result.returncode == 0, result.err
    source = (project.root / "shop/migrations/0002_backfill.py").read_text()
    assert "class Migration(CheckedMigration):" in source
    assert lockfile.parse(project.lockfile.read_text())["shop"] == "0002_backfill"


def test_update_keeps_name_and_post_deployment(project: MiniProject) -> None:
    project.add_model_field("shop", "qty = models.IntegerField(null=True)")
    assert project.manage("makemigrations", "-n", "add_qty").returncode == 0
    path = project.root / "shop/migrations/0002_add_qty.py"
    path.write_text(
        path.read_text().replace("is_post_deployment = False", "is_post_deployment = True")
    )
    project.add_model_field("shop", "size = models.IntegerField(null=True)")
    result = project.manage("makemigrations", "--update")
    assert result.returncode == 0, result.err
    assert sorted(p.name for p in path.parent.glob("0*.py")) == [
        "0001_initial.py",
        "0002_add_qty.py",
    ]
    source = path.read_text()
    assert "is_post_deployment = True" in source
    assert "name='size'" in source and "name='qty'" in source
    assert lockfile.parse(project.lockfile.read_text())["shop"] == "0002_add_qty"
    assert project.manage("makemigrations", "--check").returncode == 0


def test_merge_migration_is_checked_and_locked(project: MiniProject) -> None:
    mig = project.root / "shop/migrations"
    for name in ("0002_a", "0002_b"):
        (mig / f"{name}.py").write_text(
            "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
            "    dependencies = [('shop', '0001_initial')]\n    operations = []\n"
        )
    result = project.manage("makemigrations", "--merge", "--noinput", "-n", "merge")
    assert result.returncode == 0, result.err
    assert "class Migration(CheckedMigration):" in (mig / "0003_merge.py").read_text()
    assert lockfile.parse(project.lockfile.read_text())["shop"] == "0003_merge"


def test_squashmigrations_keeps_lockfile_true(project: MiniProject) -> None:
    project.add_model_field("shop", "qty = models.IntegerField(null=True)")
    assert project.manage("makemigrations", "-n", "add_qty").returncode == 0
    result = project.manage(
        "squashmigrations", "shop", "0002", "--noinput", "--squashed-name", "squashed"
    )
    assert result.returncode == 0, result.err
    squash = project.root / "shop/migrations/0001_squashed.py"
    assert "class Migration(CheckedMigration):" in squash.read_text()
    # The squash stands in for what it replaces: it is the app's leaf.
    assert lockfile.parse(project.lockfile.read_text())["shop"] == "0001_squashed"
    assert project.manage("migrations_lockfile", "--check").returncode == 0


def test_unknown_app_label_exits_2(project: MiniProject) -> None:
    result = project.manage("makemigrations", "nosuch", "-n", "x")
    assert result.returncode == 2
    assert "No installed app with label 'nosuch'." in result.err


MIGTOOLS_ENGINE = "DATABASES['default']['ENGINE'] = 'migtools.db.backends.postgresql'"


def test_index_on_existing_table_is_written_non_atomic(tmp_path: Path) -> None:
    # The migtools backend builds it concurrently outside a transaction.
    project = make_project(tmp_path / "p", extra_settings=MIGTOOLS_ENGINE)
    assert project.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    project.add_model_field(
        "shop", "code = models.CharField(max_length=5, db_index=True, null=True)"
    )
    result = project.manage("makemigrations", "-n", "add_code")
    assert result.returncode == 0, result.err
    assert "error" not in result.err
    source = (project.root / "shop/migrations/0002_add_code.py").read_text()
    assert "    is_post_deployment = False\n    atomic = False\n" in source


def test_plain_column_stays_atomic(project: MiniProject) -> None:
    project.add_model_field("shop", "qty = models.IntegerField(null=True)")
    assert project.manage("makemigrations", "-n", "add_qty").returncode == 0
    assert "atomic" not in (project.root / "shop/migrations/0002_add_qty.py").read_text()


def test_removed_field_is_written_as_two_phase_removal(project: MiniProject) -> None:
    models = project.root / "shop/models.py"
    models.write_text(
        models.read_text().replace("    name = models.CharField(max_length=20)\n", "    pass\n")
    )
    result = project.manage("makemigrations", "-n", "drop_name")
    assert result.returncode == 0, result.err
    source = (project.root / "shop/migrations/0002_drop_name.py").read_text()
    assert "SafeRemoveField" in source and "MOVE_TO_PENDING" in source
    # State-equivalent: nothing left to detect.
    assert project.manage("makemigrations", "--check").returncode == 0


def test_unsafe_model_change_is_refused_with_the_edit(project: MiniProject) -> None:
    project.add_model_field("shop", "qty = models.IntegerField(default=0)")
    before = project.snapshot()
    result = project.manage("makemigrations", "-n", "add_qty")
    assert result.returncode == 1
    assert "shop.Item.qty: NOT NULL column with only a Python default=" in result.err
    assert "add db_default=0 next to default=0" in result.err
    assert project.snapshot() == before


def test_new_apps_first_migration_needs_no_name(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "p", apps=("shop", "newapp"))
    result = proj.manage("makemigrations", "newapp")
    assert result.returncode == 0, result.err
    assert (proj.root / "newapp/migrations/0001_initial.py").exists()
    assert lockfile.parse(proj.lockfile.read_text()) == {"newapp": "0001_initial"}
    # Later migrations still need a name.
    proj.add_model_field("newapp", "qty = models.IntegerField(null=True)")
    assert proj.manage("makemigrations", "newapp").returncode == 2


def test_several_leaves_point_at_update_migration_never_at_merge(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "p")
    assert proj.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    mdir = proj.root / "shop" / "migrations"
    for name in ("0002_mine", "0002_theirs"):
        (mdir / f"{name}.py").write_text(
            "from django.db import migrations\n\n\n"
            "class Migration(migrations.Migration):\n"
            "    dependencies = [('shop', '0001_initial')]\n"
            "    operations = []\n"
        )
    for args in (("makemigrations", "shop", "-n", "more"), ("migrate", "shop")):
        result = proj.manage(*args)
        assert result.returncode == 1, result.out + result.err
        assert "makemigrations --merge" not in result.out + result.err, args
        assert "Conflicting migrations detected" in result.err, result.err
        assert "python manage.py update_migration" in result.err, args
        assert "Traceback" not in result.err


def test_integer_to_big_integer_is_refused_before_writing(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "p")
    proj.add_model_field("shop", "qty = models.IntegerField(null=True)")
    assert proj.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    models = proj.root / "shop" / "models.py"
    models.write_text(
        models.read_text().replace(
            "qty = models.IntegerField(null=True)", "qty = models.BigIntegerField(null=True)"
        )
    )
    before = proj.snapshot()
    result = proj.manage("makemigrations", "shop", "-n", "widen_qty")
    assert result.returncode == 1, result.out + result.err
    assert "shop.Item.qty: IntegerField -> BigIntegerField rewrites the table" in result.err
    assert "[column-type-change]" in result.err
    assert "--explain column-type-change` for why and the full recipe" in result.err
    assert "error" not in result.out
    assert proj.snapshot() == before  # refused before writing
