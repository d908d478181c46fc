from __future__ import annotations

from pathlib import Path

import pytest

from migtools.graph import lockfile
from tests.miniproject import MiniProject, make_project


@pytest.fixture
def project(tmp_path: Path) -> MiniProject:
    proj = make_project(tmp_path / "p", apps=("shop", "billing"))
    assert proj.manage("makemigrations", "shop", "billing", "-n", "initial").returncode == 0
    return proj


def test_write_then_check(project: MiniProject) -> None:
    project.lockfile.unlink()
    result = project.manage("migrations_lockfile")
    assert result.returncode == 0
    assert "Wrote migrations_lockfile.txt" in result.out
    result = project.manage("migrations_lockfile", "--check")
    assert result.returncode == 0
    assert "is up to date." in result.out


def test_check_lists_each_wrong_app_and_changes_nothing(project: MiniProject) -> None:
    project.lockfile.write_text(lockfile.render({"shop": "0000_old", "ghost": "0001_initial"}))
    before = project.snapshot()
    result = project.manage("migrations_lockfile", "--check")
    assert result.returncode == 1
    assert result.err.splitlines()[:3] == [
        "billing: missing, expected '0001_initial'",
        "ghost: listed as '0001_initial' but the app is not managed or has no migrations",
        "shop: lockfile says '0000_old', latest migration is '0001_initial'",
    ]
    assert "is stale (3 app(s))" in result.err
    assert project.snapshot() == before


def test_check_conflict_markers(project: MiniProject) -> None:
    project.lockfile.write_text(
        "<<<<<<< HEAD\nshop: 0002_a\n=======\nshop: 0002_b\n>>>>>>> main\n\nbilling: 0001_initial\n"
    )
    before = project.snapshot()
    for args in (("--check",), ()):
        result = project.manage("migrations_lockfile", *args)
        assert result.returncode == 1
        assert "holds git conflict markers" in result.err
        assert "python manage.py update_migration" in result.err
    assert project.snapshot() == before


def test_check_missing_lockfile(project: MiniProject) -> None:
    project.lockfile.unlink()
    result = project.manage("migrations_lockfile", "--check")
    assert result.returncode == 1
    assert f"No lockfile at {project.lockfile}" in result.err
    assert not project.lockfile.exists()


def test_syntax_error_names_file_and_line(project: MiniProject) -> None:
    bad = project.write("shop/migrations/0002_bad.py", "class Migration(:\n    pass\n")
    before = project.snapshot()
    for args in (("--check",), ()):
        result = project.manage("migrations_lockfile", *args)
        assert result.returncode == 1
        assert f"{bad}:1: syntax error" in result.err
    assert project.snapshot() == before


def test_several_leaves_refuse_writing(project: MiniProject) -> None:
    for name in ("0002_a", "0002_b"):
        project.write(
            f"shop/migrations/{name}.py",
            """\
            from django.db import migrations


            class Migration(migrations.Migration):
                dependencies = [("shop", "0001_initial")]
                operations = []
            """,
        )
    before = project.snapshot()
    result = project.manage("migrations_lockfile")
    assert result.returncode == 1
    assert "several leaf nodes in the migration graph (0002_a, 0002_b in shop)" in result.err
    assert project.snapshot() == before


def test_non_literal_dependencies_warn_and_fall_back(project: MiniProject) -> None:
    project.write(
        "shop/migrations/0002_dynamic.py",
        """\
        from django.db import migrations


        def parent():
            return ("shop", "0001_initial")


        class Migration(migrations.Migration):
            dependencies = [parent()]
            operations = []
        """,
    )
    result = project.manage("migrations_lockfile")
    assert result.returncode == 0, result.err
    assert "0002_dynamic.py:9: call in a dependency list" in result.err
    assert "imported the migrations of app 'shop'" in result.err
    assert lockfile.read(project.lockfile)["shop"] == "0002_dynamic"


def test_unknown_app_in_settings_exits_1_as_every_bad_setting(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "p", extra_settings='MIGTOOLS_APPS = ["shop", "nosuch"]')
    result = proj.manage("migrations_lockfile", "--check")
    assert result.returncode == 1
    assert "No installed app with label 'nosuch'." in result.err


def test_lockfile_path_setting(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "p", extra_settings='MIGTOOLS_LOCKFILE_PATH = "locks/ml.txt"')
    (proj.root / "locks").mkdir()  # a missing directory is refused (tests/test_conf.py)
    assert proj.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    assert lockfile.read(proj.root / "locks/ml.txt") == {"shop": "0001_initial"}
    assert not proj.lockfile.exists()


def test_default_path_is_git_root(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()  # the checkout root, above the project directory
    proj = make_project(tmp_path / "src" / "p")
    assert proj.manage("makemigrations", "shop", "-n", "initial").returncode == 0
    assert lockfile.read(tmp_path / "migrations_lockfile.txt") == {"shop": "0001_initial"}


# -- adoption: Sentry's lockfile and django-linear-migrations' max_migration.txt ------------

SENTRY_HEADER = (
    "Django migrations lock file. This helps us avoid migration conflicts on master.\n"
    "If you have a conflict in this file, it means that someone has committed a migration\n"
    "ahead of you.\n\n"
)


def test_sentry_lockfile_for_the_same_graph_passes_check(project: MiniProject) -> None:
    project.lockfile.write_text(SENTRY_HEADER + "billing: 0001_initial\nshop: 0001_initial\n")
    result = project.manage("migrations_lockfile", "--check")
    assert result.returncode == 0, result.err
    assert "is up to date." in result.out
    assert project.manage("check").err.count("migtools.W00") == 0


def test_stale_sentry_lockfile_fails_check(project: MiniProject) -> None:
    project.lockfile.write_text(SENTRY_HEADER + "billing: 0001_initial\nshop: 0000_old\n")
    result = project.manage("migrations_lockfile", "--check")
    assert result.returncode == 1
    assert "shop: lockfile says '0000_old', latest migration is '0001_initial'" in result.err


def test_sentry_lockfile_is_converted_in_one_step(project: MiniProject) -> None:
    project.lockfile.write_text(SENTRY_HEADER + "billing: 0001_initial\nshop: 0001_initial\n")
    result = project.manage("migrations_lockfile")
    assert result.returncode == 0, result.err
    assert result.out.splitlines() == [
        "Wrote migrations_lockfile.txt",
        "Converted migrations_lockfile.txt from Sentry's format to migtools' format.",
    ]
    assert project.lockfile.read_text() == lockfile.render(
        {"billing": "0001_initial", "shop": "0001_initial"}
    )


def test_max_migration_files_are_checked_then_converted(project: MiniProject) -> None:
    project.lockfile.unlink()
    for app in ("shop", "billing"):
        (project.root / app / "migrations" / "max_migration.txt").write_text("0001_initial\n")
    result = project.manage("migrations_lockfile", "--check")
    assert result.returncode == 0, result.err
    (project.root / "shop/migrations/max_migration.txt").write_text("0000_old\n")
    result = project.manage("migrations_lockfile", "--check")
    assert result.returncode == 1
    assert "shop: lockfile says '0000_old', latest migration is '0001_initial'" in result.err
    result = project.manage("migrations_lockfile")
    assert result.returncode == 0, result.err
    assert result.out.splitlines()[1] == (
        "Converted 2 max_migration.txt file(s) (django-linear-migrations) into "
        "migrations_lockfile.txt. Remove them and django-linear-migrations once you commit it."
    )
    assert lockfile.parse(project.lockfile.read_text()) == {
        "billing": "0001_initial",
        "shop": "0001_initial",
    }
