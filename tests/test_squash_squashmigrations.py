"""squashmigrations "squash well": the migtools form with honest attributes, migration tests
that still pass (issue: `squashmigrations APP A B` then `pytest --migrations`), a squash of a
squash refused where Django cannot load it, and the next command printed."""

from __future__ import annotations

from pathlib import Path

import django
import pytest

from migtools.graph import lockfile
from tests.pgserver import ensure_database_url
from tests.squash_helpers import HEAD, run_pytest, squash, squash_project


@pytest.fixture(scope="module", autouse=True)
def _server() -> None:
    ensure_database_url()


def test_squash_carries_attributes_and_every_migration_test_still_passes(tmp_path: Path) -> None:
    proj = squash_project(tmp_path / "p")
    before = run_pytest(proj)
    assert before.returncode == 0, before.stdout + before.stderr
    assert "2 passed" in before.stdout

    result = proj.manage("squashmigrations", "shop", "0001", "0004", "--noinput")
    assert result.returncode == 0, result.err
    text = (proj.root / "shop/migrations/0001_initial_squashed_0004_code.py").read_text()
    assert "class Migration(CheckedMigration):" in text
    # 0003 is post-deployment, so the squash that holds its data migration is too.
    assert "    is_post_deployment = True\n" in text
    assert "is_post_deployment = True: it replaces post-deployment 0003_fill_qty." in result.out
    assert "    ignore_rules = {'run-sql-not-safe': 'a one-off data fix (0003_fill_qty)'}\n" in text
    # The non-elidable data migration is kept; the elidable RunSQL is not.
    assert "shop.data.fill_qty" in text and "UPDATE shop_item" not in text
    assert (
        "tests/test_shop_migrations.py:6: FillQtyTest.migrate_from = '0002_add_qty'" in result.out
    )
    assert "tests/test_shop_migrations.py:7: FillQtyTest.migrate_to = '0003_fill_qty'" in result.out
    assert "Next: python manage.py verify_squashes shop" in result.out

    assert lockfile.parse(proj.lockfile.read_text())["shop"] == "0001_initial_squashed_0004_code"
    assert proj.manage("migrations_lockfile", "--check").returncode == 0
    assert proj.manage("makemigrations", "--check").returncode == 0
    after = run_pytest(proj)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "2 passed" in after.stdout
    assert proj.manage("verify_squashes").returncode == 0


def test_a_test_naming_a_missing_migration_still_fails_with_a_hint(tmp_path: Path) -> None:
    """The replaced graph is used only for names that exist there: a typo still fails."""
    proj = squash_project(tmp_path / "p")
    squash(proj)
    path = proj.root / "tests/test_shop_migrations.py"
    path.write_text(path.read_text().replace('"0002_add_qty"', '"0002_add_qtx"'))
    result = run_pytest(proj)
    assert result.returncode == 1
    assert "migrate_from = '0002_add_qtx' is not a migration of app 'shop'" in result.stdout


def test_plain_squash_without_post_deployment_stays_pre_deployment(tmp_path: Path) -> None:
    proj = squash_project(tmp_path / "p")
    result = proj.manage("squashmigrations", "shop", "0002", "--noinput")
    assert result.returncode == 0, result.err
    text = (proj.root / "shop/migrations/0001_squashed_0002_add_qty.py").read_text()
    assert "    is_post_deployment = False\n" in text
    assert "ignore_rules" not in text


@pytest.mark.skipif(django.VERSION >= (6, 0), reason="Django 6.0+ loads a squash of a squash")
def test_squash_of_a_squash_is_refused_with_the_way_out(tmp_path: Path) -> None:
    proj = squash_project(tmp_path / "p")
    squash(proj)
    for name, parent in (("0005_more", "0004_code"), ("0006_most", "0005_more")):
        proj.write(
            f"shop/migrations/{name}.py",
            HEAD + f'    dependencies = [("shop", "{parent}")]\n    operations = []\n',
        )
    assert proj.manage("migrations_lockfile").returncode == 0
    before = proj.snapshot()
    result = proj.manage("squashmigrations", "shop", "0006", "--noinput")
    assert result.returncode == 1
    assert (
        "shop.0001_squashed_0004_code is itself a squash, and Django "
        f"{django.get_version()} cannot load a squash of a squash. Once it is deployed "
        "everywhere, make it a normal migration with python manage.py prune_squashed shop, "
        "then squash again, or squash only what comes after it: python manage.py "
        "squashmigrations shop 0005_more 0006_most. Nothing was written."
    ) in result.err
    assert "Traceback" not in result.err
    assert proj.snapshot() == before


def test_a_squash_that_needs_manual_porting_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """A RunPython whose function lives in the migration file itself: Django writes a squash
    that references it by module path (not Python until the function is copied in)."""
    proj = squash_project(tmp_path / "p")
    proj.write(
        "shop/migrations/0005_inline.py",
        HEAD
        + "\n\ndef touch(apps, schema_editor):\n    pass\n\n\n"
        + "class Migration(CheckedMigration):\n"
        + '    dependencies = [("shop", "0004_code")]\n'
        + "    is_post_deployment = False\n"
        + "    operations = [migrations.RunPython(touch, migrations.RunPython.noop)]\n",
    )
    result = proj.manage("squashmigrations", "shop", "0004", "0005", "--noinput")
    assert "Traceback" not in result.err, result.err
    assert result.returncode == 0, result.err
    (written,) = (proj.root / "shop/migrations").glob("0004_code_squashed_0005_inline.py")
    assert (
        f"shop/migrations/{written.name}: left as Django wrote it: copy in the functions it names"
        in result.err
    )
    assert "class Migration(migrations.Migration):" in written.read_text()
