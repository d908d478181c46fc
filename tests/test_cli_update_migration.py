"""``migtools update-migration``: the settings-free renamer, run as a process in real git
repositories, held to the same tree as ``manage.py update_migration`` on the same merges and
rebases (byte for byte: every file and every index entry), and resolving a merge whose
``models.py`` is still conflicted, where every ``manage.py`` command fails."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.miniproject import MiniProject, make_project
from tests.test_cli import GIT_ENV, cli

MODELS = (
    "from django.db import models\n\n\nclass Item(models.Model):\n"
    "    name = models.CharField(max_length=20)\n"
)


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_ENV, "GIT_EDITOR": "true", "GIT_MERGE_AUTOEDIT": "no"}
    proc = subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {proc.stdout}{proc.stderr}")
    return proc


def migration(deps: list[tuple[str, str]], field: str | None = None) -> str:
    lines = "".join(f"        ({a!r}, {n!r}),\n" for a, n in deps)
    ops = ""
    if field:
        ops = f"        migrations.AddField('item', {field!r}, models.IntegerField(null=True)),\n"
    return (
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    dependencies = [\n{lines}    ]\n\n"
        f"    operations = [\n{ops}    ]\n"
    )


def migration_test(migrate_from: str, migrate_to: str) -> str:
    return (
        "from migtools.testing import TestMigrations\n\n\n"
        "class TestIt(TestMigrations):\n"
        "    app = 'shop'\n"
        f"    migrate_from = {migrate_from!r}\n"
        f"    migrate_to = {migrate_to!r}\n"
    )


def commit(project: MiniProject, message: str) -> None:
    lock = project.manage("migrations_lockfile")
    assert lock.returncode == 0, lock.err
    git(project.root, "add", "-A")
    git(project.root, "commit", "-q", "--no-verify", "-m", message)


def base(tmp_path: Path) -> MiniProject:
    project = make_project(tmp_path / "base", apps=("shop",))
    (project.root / ".gitignore").write_text("__pycache__/\n*.pyc\n")
    project.write("shop/migrations/__init__.py", "")
    project.write("shop/migrations/0001_initial.py", migration([]))
    git(project.root, "init", "-q", "-b", "main")
    commit(project, "base")
    return project


def add(project: MiniProject, name: str, parent: str, *, test: bool = False) -> None:
    project.write(f"shop/migrations/{name}.py", migration([("shop", parent)], name[5:]))
    if test:
        project.write(f"tests/test_{name[5:]}.py", migration_test(parent, name))


def merge_main_into_branch(project: MiniProject) -> None:
    git(project.root, "checkout", "-q", "-b", "feature")
    add(project, "0002_feature", "0001_initial", test=True)
    commit(project, "feature")
    git(project.root, "checkout", "-q", "main")
    add(project, "0002_mainline", "0001_initial")
    commit(project, "main")
    git(project.root, "checkout", "-q", "feature")
    assert git(project.root, "merge", "main", check=False).returncode != 0


def merge_branch_into_main(project: MiniProject) -> None:
    git(project.root, "checkout", "-q", "-b", "feature")
    add(project, "0002_feature", "0001_initial")
    add(project, "0003_more", "0002_feature", test=True)
    commit(project, "feature")
    git(project.root, "checkout", "-q", "main")
    add(project, "0002_mainline", "0001_initial")
    commit(project, "main")
    assert git(project.root, "merge", "feature", check=False).returncode != 0


def rebase_first_stop(project: MiniProject) -> None:
    git(project.root, "checkout", "-q", "-b", "feature")
    add(project, "0002_first", "0001_initial", test=True)
    commit(project, "first")
    add(project, "0003_second", "0002_first", test=True)
    commit(project, "second")
    git(project.root, "checkout", "-q", "main")
    add(project, "0002_mainline", "0001_initial")
    commit(project, "main")
    git(project.root, "checkout", "-q", "feature")
    assert git(project.root, "rebase", "main", check=False).returncode != 0


def tree(root: Path) -> dict[str, bytes]:
    """Every file of the work tree, the index entries and git's status, byte for byte."""
    out = {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts and "__pycache__" not in p.parts
    }
    out["<index>"] = git(root, "ls-files", "--stage").stdout.encode()
    out["<status>"] = git(root, "status", "--porcelain").stdout.encode()
    state = root / ".git" / "migtools" / "renames.json"
    out["<map>"] = state.read_bytes() if state.exists() else b""
    return out


SCENARIOS: dict[str, tuple[Callable[[MiniProject], None], tuple[str, ...]]] = {
    "merge main into branch": (merge_main_into_branch, ()),
    "merge branch into main": (merge_branch_into_main, ()),
    "a rebase stop": (rebase_first_stop, ()),
    "a named migration": (merge_main_into_branch, ("0002_feature", "shop")),
    "dry run": (merge_main_into_branch, ("--dry-run",)),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_cli_leaves_the_same_tree_as_manage_py(tmp_path: Path, scenario: str) -> None:
    make, args = SCENARIOS[scenario]
    project = base(tmp_path)
    make(project)
    ours = tmp_path / "ours"
    shutil.copytree(project.root, ours, symlinks=True)
    for root in (project.root, ours):
        git(root, "update-index", "-q", "--refresh", check=False)

    django = project.manage("update_migration", *args)
    cli_run = cli(ours, "update-migration", *args)

    assert django.returncode == 0, django.err
    assert cli_run.returncode == 0, cli_run.stderr
    assert "Traceback" not in cli_run.stderr
    assert tree(ours) == tree(project.root)
    # the same plan, in the same words (the CLI adds one line: it looked at no database)
    assert (
        cli_run.stdout.replace(
            "Not checked whether the moved migrations are applied in a database (this command reads "
            "no settings): if they are, roll them back first, or run 'python manage.py "
            "update_migration --update-applied'.\n",
            "",
        )
        == django.out
    )


def test_a_rebase_stop_after_stop_stays_equal(tmp_path: Path) -> None:
    """Through a whole rebase (the rename map carried between stops), stop after stop."""
    project = base(tmp_path)
    rebase_first_stop(project)
    ours = tmp_path / "ours"
    shutil.copytree(project.root, ours, symlinks=True)
    for _stop in range(4):
        django = project.manage("update_migration")
        cli_run = cli(ours, "update-migration")
        assert (django.returncode, cli_run.returncode) == (0, 0), django.err + cli_run.stderr
        assert tree(ours) == tree(project.root)
        done = [
            git(root, "rebase", "--continue", check=False).returncode == 0
            for root in (project.root, ours)
        ]
        assert done[0] == done[1]
        if done[0]:
            break
    assert tree(ours) == tree(project.root)
    assert git(ours, "status", "--porcelain").stdout == ""


def conflicted_models(tmp_path: Path) -> MiniProject:
    """A merge of main into the branch where both added a field to Item: models.py holds
    conflict markers, and the migrations conflict too."""
    project = base(tmp_path)
    git(project.root, "checkout", "-q", "-b", "feature")
    project.add_model_field("shop", "color = models.IntegerField(null=True)")
    add(project, "0002_color", "0001_initial", test=True)
    commit(project, "feature")
    git(project.root, "checkout", "-q", "main")
    project.add_model_field("shop", "size = models.IntegerField(null=True)")
    add(project, "0002_size", "0001_initial")
    commit(project, "main")
    git(project.root, "checkout", "-q", "feature")
    assert git(project.root, "merge", "main", check=False).returncode != 0
    assert "<<<<<<<" in (project.root / "shop" / "models.py").read_text()
    return project


def resolve_models(root: Path) -> None:
    (root / "shop" / "models.py").write_text(
        MODELS + "    color = models.IntegerField(null=True)\n"
        "    size = models.IntegerField(null=True)\n"
    )
    git(root, "add", "shop/models.py")


def test_a_merge_with_conflicted_models_resolves(tmp_path: Path) -> None:
    project = conflicted_models(tmp_path)
    theirs = tmp_path / "theirs"
    shutil.copytree(project.root, theirs, symlinks=True)

    # manage.py cannot even start: Django imports models.py
    broken = project.manage("update_migration")
    assert broken.returncode != 0
    assert "SyntaxError" in broken.err

    proc = cli(project.root, "update-migration")

    assert proc.returncode == 0, proc.stderr
    assert "  0002_color -> 0003_color\n" in proc.stdout
    assert proc.stdout.endswith(
        "Next: resolve the conflicts in shop/models.py and 'git add' them, then git merge "
        "--continue\n"
    )
    names = sorted(p.name for p in (project.root / "shop" / "migrations").glob("0*.py"))
    assert names == ["0001_initial.py", "0002_size.py", "0003_color.py"]
    assert (project.root / "tests" / "test_color.py").read_text() == migration_test(
        "0002_size", "0003_color"
    )
    assert cli(project.root, "lockfile", "--check").returncode == 0

    # once models are resolved, manage.py update_migration on the same merge gives the same
    resolve_models(project.root)
    resolve_models(theirs)
    django = MiniProject(theirs).manage("update_migration")
    assert django.returncode == 0, django.err
    assert tree(project.root) == tree(theirs)
    git(project.root, "merge", "--continue")
    assert git(project.root, "status", "--porcelain").stdout == ""


def test_update_applied_and_bad_input_are_one_line(tmp_path: Path) -> None:
    project = base(tmp_path)
    merge_main_into_branch(project)
    before = tree(project.root)

    unknown_flag = cli(project.root, "update-migration", "--update-applied")
    unknown_app = cli(project.root, "update-migration", "0002_feature", "nope")
    no_match = cli(project.root, "update-migration", "0009")

    assert unknown_flag.returncode == 2  # argparse: not an option of this command
    assert (unknown_app.returncode, unknown_app.stderr) == (
        2,
        "error: No installed app with label 'nope'.\n",
    )
    assert (no_match.returncode, no_match.stderr) == (
        1,
        "error: No migration matches '0009' in the managed apps.\n",
    )
    assert tree(project.root) == before
