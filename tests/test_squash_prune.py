"""prune_squashed on real projects, real git and a real PostgreSQL: a deployed squash becomes a
normal migration (a second app that depended on a replaced migration included), a half-applied
database makes it refuse with nothing changed, and SIGKILL before any of its write and git
events, then one plain run, always ends fully pruned and staged."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import django
import pytest

from tests.miniproject import MiniProject, Result
from tests.pgserver import ensure_database_url
from tests.squash_helpers import git, own_database, run_pytest, squash_project

# tests/crashhook/sitecustomize.py, first on the child's PYTHONPATH, kills the process before
# the Nth write or git event of the journaled writer when this variable says N.
KILL_AT = "MIGTOOLS_TEST_KILL_AT"
CRASH_HOOK = Path(__file__).resolve().parent / "crashhook"
SQUASH = "0001_squashed_0003_fill_qty"
GONE = ("0001_initial.py", "0002_add_qty.py", "0003_fill_qty.py")


@pytest.fixture(scope="module", autouse=True)
def _server() -> None:
    ensure_database_url()


def _drop_fill_qty_test(proj: MiniProject) -> None:
    """Keep only the test whose names have an equivalent after pruning."""
    path = proj.root / "tests/test_shop_migrations.py"
    text = path.read_text()
    start = text.index("class FillQtyTest")
    path.write_text(text[:start] + text[text.index("class CodeTest") :])


def _deployed(tmp_path: Path, name: str, *, keep_fill_test: bool = False) -> MiniProject:
    """Squash shop 0001-0003 (billing.0001 depends on shop.0002), deploy it, commit it."""
    proj = squash_project(tmp_path / "p", billing=True, with_git=True)
    own_database(proj, name)
    if not keep_fill_test:
        _drop_fill_qty_test(proj)
    result = proj.manage("squashmigrations", "shop", "0003", "--noinput")
    assert result.returncode == 0, result.err
    result = proj.manage("migrate")
    assert result.returncode == 0, result.err
    git(proj.root, "add", "-A")
    git(proj.root, "commit", "-q", "-m", "squash")
    return proj


def _assert_pruned(proj: MiniProject) -> None:
    mig = proj.root / "shop/migrations"
    assert sorted(p.name for p in mig.glob("0*.py")) == [f"{SQUASH}.py", "0004_code.py"]
    squash_text = (mig / f"{SQUASH}.py").read_text()
    assert "replaces" not in squash_text
    assert "    is_post_deployment = True\n" in squash_text
    # Only the span that changes: the rest of each file is as it was.
    billing = (proj.root / "billing/migrations/0001_initial.py").read_text()
    assert f'    dependencies = [("shop", "{SQUASH}")]\n' in billing
    assert f'    dependencies = [("shop", "{SQUASH}")]\n' in (mig / "0004_code.py").read_text()
    status = git(proj.root, "status", "--porcelain")
    assert sorted(status.splitlines()) == sorted(
        [
            "M  billing/migrations/0001_initial.py",
            *(f"D  shop/migrations/{name}" for name in GONE),
            f"M  shop/migrations/{SQUASH}.py",
            "M  shop/migrations/0004_code.py",
            "M  tests/test_shop_migrations.py",
        ]
    ), status
    assert not (proj.root / ".git/migtools/journal.json").exists()


def test_prune_a_deployed_squash_end_to_end(tmp_path: Path) -> None:
    proj = _deployed(tmp_path, "sq_prune_e2e")

    result = proj.manage("prune_squashed")

    assert result.returncode == 0, result.err
    assert f"Pruning shop.{SQUASH}: deleting 0001_initial, 0002_add_qty, 0003_fill_qty" in (
        result.out
    )
    assert f"CodeTest.migrate_from 0003_fill_qty -> {SQUASH}" in result.out
    assert "Then: python manage.py migrate shop --prune" in result.out
    assert result.out.rstrip().endswith("Next: review the staged changes and commit them.")
    _assert_pruned(proj)
    test_text = (proj.root / "tests/test_shop_migrations.py").read_text()
    assert f'    migrate_from = "{SQUASH}"\n' in test_text
    # Django's loader loads; nothing to migrate; no model change; the lockfile checks.
    assert proj.manage("migrate", "--check").returncode == 0
    makemigrations = proj.manage("makemigrations", "--check")
    assert makemigrations.returncode == 0, makemigrations.out + makemigrations.err
    assert proj.manage("migrations_lockfile", "--check").returncode == 0
    tests = run_pytest(proj)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "1 passed" in tests.stdout
    # Django's own step for the rows of the deleted migrations.
    pruned_rows = proj.manage("migrate", "shop", "--prune")
    assert pruned_rows.returncode == 0, pruned_rows.err
    assert "shop.0002_add_qty" in pruned_rows.out
    assert proj.manage("verify_squashes").out.startswith("No squashed migrations")
    # A second run has nothing to do.
    again = proj.manage("prune_squashed")
    assert again.returncode == 0
    assert "No squashed migrations (migrations with `replaces`) to prune." in again.out


def test_baseline_naming_a_replaced_migration_names_the_squash_afterwards(tmp_path: Path) -> None:
    proj = _deployed(tmp_path, "sq_prune_baseline")
    # Adopted when shop's leaf was 0003_fill_qty; billing's entry is not pruned.
    path = proj.root / "migrations_baseline.txt"
    path.write_text("# adopted\n\nbilling: 0001_initial\nshop: 0003_fill_qty\n")
    git(proj.root, "add", "-A")
    git(proj.root, "commit", "-q", "-m", "adopt")

    result = proj.manage("prune_squashed")

    assert result.returncode == 0, result.err
    assert path.read_text() == f"# adopted\n\nbilling: 0001_initial\nshop: {SQUASH}\n"
    assert "M  migrations_baseline.txt" in git(proj.root, "status", "--porcelain").splitlines()
    check = proj.manage("migrations_lockfile", "--check")
    assert check.returncode == 0, check.out + check.err


def test_dry_run_prints_plan_and_diff_and_reports_tests_without_equivalent(
    tmp_path: Path,
) -> None:
    proj = _deployed(tmp_path, "sq_prune_dry", keep_fill_test=True)
    before = proj.snapshot()

    result = proj.manage("prune_squashed", "shop", "--dry-run")

    assert result.returncode == 0, result.err
    assert (
        f'-    dependencies = [("shop", "0002_add_qty")]\n+    dependencies = [("shop", "{SQUASH}")]'
        in (result.out)
    )
    assert "--- a/shop/migrations/0002_add_qty.py\n+++ /dev/null" in result.out
    assert "Dry run: nothing was changed." in result.out
    # FillQtyTest starts inside the squash: no equivalent, reported and left whole.
    assert (
        "tests/test_shop_migrations.py:6: FillQtyTest.migrate_from = '0002_add_qty': that state "
        f"exists only inside shop.{SQUASH}" in result.err
    )
    assert "FillQtyTest.migrate_to" not in result.out
    assert proj.snapshot() == before
    assert git(proj.root, "status", "--porcelain") == ""


def test_half_applied_database_is_refused_with_nothing_changed(tmp_path: Path) -> None:
    proj = squash_project(tmp_path / "p", billing=True, with_git=True)
    own_database(proj, "sq_prune_half")
    assert proj.manage("migrate", "shop", "0002").returncode == 0
    assert proj.manage("squashmigrations", "shop", "0003", "--noinput").returncode == 0
    git(proj.root, "add", "-A")
    git(proj.root, "commit", "-q", "-m", "squash")
    before = proj.snapshot()

    result = proj.manage("prune_squashed")

    assert result.returncode == 1
    assert (
        f"database 'default': shop.{SQUASH} is half applied: 0001_initial, 0002_add_qty "
        "applied, 0003_fill_qty not"
    ) in result.err
    assert "Nothing was changed." in result.err
    assert "Traceback" not in result.err
    assert proj.snapshot() == before
    assert git(proj.root, "status", "--porcelain") == ""


def test_database_that_applied_the_replaced_migrations_gets_the_squash_row(
    tmp_path: Path,
) -> None:
    """Applied one by one before the squash existed, never migrated since: the squash's row is
    recorded, so the database shows nothing to migrate once the replaced files are gone."""
    proj = squash_project(tmp_path / "p", billing=True, with_git=True)
    own_database(proj, "sq_prune_rows")
    _drop_fill_qty_test(proj)
    assert proj.manage("migrate").returncode == 0
    assert proj.manage("squashmigrations", "shop", "0003", "--noinput").returncode == 0
    git(proj.root, "add", "-A")
    git(proj.root, "commit", "-q", "-m", "squash")

    result = proj.manage("prune_squashed")

    assert result.returncode == 0, result.err
    assert f"database 'default': recording shop.{SQUASH} as applied" in result.out
    _assert_pruned(proj)
    check = proj.manage("migrate", "--check")
    assert check.returncode == 0, check.out + check.err


def test_fresh_database_may_prune_and_migrates_from_empty(tmp_path: Path) -> None:
    proj = squash_project(tmp_path / "p", billing=True, with_git=True)
    own_database(proj, "sq_prune_fresh")
    _drop_fill_qty_test(proj)
    assert proj.manage("squashmigrations", "shop", "0003", "--noinput").returncode == 0
    git(proj.root, "add", "-A")
    git(proj.root, "commit", "-q", "-m", "squash")
    result = proj.manage("prune_squashed")
    assert result.returncode == 0, result.err
    _assert_pruned(proj)
    migrate = proj.manage("migrate")
    assert migrate.returncode == 0, migrate.err
    assert f"Applying shop.{SQUASH}... OK" in migrate.out


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    proj = squash_project(tmp_path / "p", with_git=True)
    unknown = proj.manage("prune_squashed", "nosuch")
    assert unknown.returncode == 2 and "nosuch" in unknown.err
    alias = proj.manage("prune_squashed", "--database", "other")
    assert alias.returncode == 2 and "'other'" in alias.err
    for result in (unknown, alias):
        assert "Traceback" not in result.err


def _killed_at(root: Path, event: int) -> Result:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(CRASH_HOOK), str(root)]),
        "PYTHONWARNINGS": "ignore",
        KILL_AT: str(event),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [sys.executable, "manage.py", "prune_squashed"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    return Result(proc.stdout, proc.stderr, proc.returncode)


def test_sigkill_before_each_event_then_one_plain_run_finishes(tmp_path: Path) -> None:
    base = _deployed(tmp_path, "sq_prune_kill")
    events = 0
    for event in range(1, 40):
        root = tmp_path / f"kill{event}"
        shutil.copytree(base.root, root, symlinks=True)
        proj = MiniProject(root)
        killed = _killed_at(root, event)
        if killed.returncode == 0:
            events = event - 1
            _assert_pruned(proj)
            break
        assert killed.returncode == -signal.SIGKILL, killed.err
        pending = (root / ".git/migtools/journal.json").exists()
        assert pending == (event > 1)  # the journal is the first event

        again = proj.manage("prune_squashed")

        assert again.returncode == 0, again.err
        if pending:
            assert (
                "was interrupted earlier (after" in again.out
                and f"completed it: prune_squashed shop.{SQUASH}." in again.out
            ), again.out
            assert "No squashed migrations (migrations with `replaces`) to prune." in again.out
        _assert_pruned(proj)
        shutil.rmtree(root)
    else:
        pytest.fail("prune_squashed never finished")
    # the journal, 4 writes, 3 deletions, the index, the end: each was a kill point
    assert events == 10


@pytest.mark.skipif(django.VERSION < (6, 0), reason="Django 5.2 cannot load a squash of a squash")
def test_squash_of_a_squash_verifies_and_prunes_on_django_6(tmp_path: Path) -> None:
    proj = squash_project(tmp_path / "p", billing=True, with_git=True)
    own_database(proj, "sq_prune_nested")
    assert proj.manage("squashmigrations", "shop", "0003", "--noinput").returncode == 0
    outer = proj.manage("squashmigrations", "shop", "0004", "--noinput")
    assert outer.returncode == 0, outer.err
    outer_name = "0001_squashed_0004_code"
    verify = proj.manage("verify_squashes")
    assert verify.returncode == 0, verify.out + verify.err
    assert f"shop.{outer_name} (replaces 2): faithful (state and schema)" in verify.out
    assert f"shop.{SQUASH} (replaces 3): faithful (state and schema)" in verify.out
    tests = run_pytest(proj)  # CodeTest names two migrations the squashes replace
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert proj.manage("migrate").returncode == 0
    git(proj.root, "add", "-A")
    git(proj.root, "commit", "-q", "-m", "squashes")

    result = proj.manage("prune_squashed")

    assert result.returncode == 0, result.err
    mig = proj.root / "shop/migrations"
    assert sorted(p.name for p in mig.glob("0*.py")) == [f"{outer_name}.py"]
    assert "replaces" not in (mig / f"{outer_name}.py").read_text()
    billing = (proj.root / "billing/migrations/0001_initial.py").read_text()
    assert f'    dependencies = [("shop", "{outer_name}")]\n' in billing
    # Both tests start inside the squash now: left for a human, named.
    assert "CodeTest.migrate_from = '0003_fill_qty'" in result.err
    assert proj.manage("migrate", "--check").returncode == 0
    assert proj.manage("makemigrations", "--check").returncode == 0
    assert proj.manage("migrations_lockfile", "--check").returncode == 0
