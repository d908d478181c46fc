"""``migtools lockfile [--check]``: the settings-free CLI, run as a process in real git
repositories, held equal to ``manage.py migrations_lockfile`` on the same projects."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migtools.graph import checkout, lockfile
from tests.miniproject import MiniProject, make_project

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from generate import generate  # noqa: E402

GIT_ENV = {
    "GIT_AUTHOR_NAME": "migtools tests",
    "GIT_AUTHOR_EMAIL": "tests@migtools.invalid",
    "GIT_COMMITTER_NAME": "migtools tests",
    "GIT_COMMITTER_EMAIL": "tests@migtools.invalid",
}


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", *args], cwd=root, env={**os.environ, **GIT_ENV}, check=True, capture_output=True
    )


def git_init(root: Path) -> None:
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "project")


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The console script as a user's shell runs it: no settings, no project on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    return subprocess.run(
        [sys.executable, "-m", "migtools.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


def manage(root: Path, *args: str, settings: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings, "PYTHONPATH": str(root)}
    env["PYTHONWARNINGS"] = "ignore"
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=root, env=env, capture_output=True, text=True
    )


def same_outcome(root: Path, settings: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py migrations_lockfile ARGS`` and ``migtools lockfile ARGS`` on the same
    state (each on a copy of the lockfile as it was) and assert the same exit code, files
    and messages (Django prints a CommandError as ``CommandError: ``, the CLI ``error: ``)."""
    path = root / "migrations_lockfile.txt"
    before = path.read_bytes() if path.exists() else None
    django = manage(root, "migrations_lockfile", *args, settings=settings)
    after_django = path.read_bytes() if path.exists() else None
    if before is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(before)
    ours = cli(root, "lockfile", *args)
    after_ours = path.read_bytes() if path.exists() else None
    assert ours.returncode == django.returncode, (django.stderr, ours.stderr)
    assert ours.stdout == django.stdout
    assert ours.stderr == django.stderr.replace("CommandError: ", "error: ")
    assert after_ours == after_django
    return ours


# -- equal to manage.py ---------------------------------------------------------------------


@pytest.fixture
def example(tmp_path: Path) -> Path:
    root = tmp_path / "example"
    shutil.copytree(
        REPO / "example_project", root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    git_init(root)
    return root


def test_example_project_agrees_with_manage_py(example: Path) -> None:
    result = same_outcome(example, "shop.settings", "--check")
    assert result.returncode == 0
    assert result.stdout == "migrations_lockfile.txt is up to date.\n"
    lock = example / "migrations_lockfile.txt"
    lock.write_text(lock.read_text().replace("orders: 0003", "orders: 0002"))
    result = same_outcome(example, "shop.settings", "--check")
    assert result.returncode == 1
    assert "orders: lockfile says '0002_" in result.stderr
    same_outcome(example, "shop.settings")  # rewrites it
    assert cli(example, "lockfile", "--check").returncode == 0
    lock.unlink()
    result = same_outcome(example, "shop.settings", "--check")
    assert result.returncode == 1
    assert "No lockfile at" in result.stderr
    same_outcome(example, "shop.settings")


def test_generated_corpus_agrees_with_manage_py(tmp_path: Path) -> None:
    project = generate(tmp_path / "gen", 4, 30, git=True, cross_app_fks=True)
    settings = project.settings_module
    result = same_outcome(project.root, settings)
    assert result.stdout == "Wrote migrations_lockfile.txt\n"
    assert lockfile.parse(project.lockfile.read_text()) == project.leaves
    assert same_outcome(project.root, settings, "--check").returncode == 0
    # A migration added without the lockfile: both fail the same way.
    app = project.apps[2]
    leaf = project.leaves[app]
    (project.root / app / "migrations" / "0031_more.py").write_text(
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        f"    dependencies = [({app!r}, {leaf!r})]\n    operations = []\n"
    )
    result = same_outcome(project.root, settings, "--check")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"{app}: lockfile says '{leaf}', latest migration is '0031_more'"
    )
    # Two leaves in one app: the same conflict message and exit code.
    (project.root / app / "migrations" / "0031_other.py").write_text(
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        f"    dependencies = [({app!r}, {leaf!r})]\n    operations = []\n"
    )
    result = same_outcome(project.root, settings, "--check")
    assert result.returncode == 1
    assert "Conflicting migrations" in result.stderr
    # A Sentry-format lockfile of the same graph passes both.
    (project.root / app / "migrations" / "0031_other.py").unlink()
    entries = {**project.leaves, app: "0031_more"}
    project.lockfile.write_text(
        "Django migrations lock file. This helps us avoid migration conflicts.\n\n"
        + "".join(f"{label}: {entries[label]}\n" for label in sorted(entries))
    )
    assert same_outcome(project.root, settings, "--check").returncode == 0
    result = same_outcome(project.root, settings)
    assert "from Sentry's format to migtools' format" in result.stdout


@pytest.fixture
def mini(tmp_path: Path) -> MiniProject:
    proj = make_project(tmp_path / "p", apps=("shop", "billing"))
    assert proj.manage("makemigrations", "shop", "billing", "-n", "initial").returncode == 0
    git_init(proj.root)
    return proj


def test_swappable_dependency_reads_auth_user_model_from_pyproject(mini: MiniProject) -> None:
    (mini.root / "billing/migrations/0002_user.py").write_text(
        "from django.conf import settings\nfrom django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('billing', '0001_initial'), "
        "migrations.swappable_dependency(settings.AUTH_USER_MODEL)]\n"
        "    operations = []\n"
    )
    node = ("billing", "0002_user")
    # Default auth.User: django.contrib.auth is outside the repository, so it is trusted.
    graph = checkout.load(checkout.read_config(mini.root))
    assert graph.parents[node] == {("billing", "0001_initial")}
    (mini.root / "pyproject.toml").write_text('[tool.migtools]\nauth_user_model = "shop.User"\n')
    graph = checkout.load(checkout.read_config(mini.root))
    assert graph.parents[node] == {("billing", "0001_initial"), ("shop", "0001_initial")}
    result = cli(mini.root, "lockfile", "--check")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "billing: lockfile says '0001_initial', latest migration is '0002_user'"
    )


# -- configuration --------------------------------------------------------------------------


def test_apps_and_exclude_and_lockfile_path(mini: MiniProject) -> None:
    (mini.root / "pyproject.toml").write_text(
        '[tool.migtools]\napps = ["shop"]\nlockfile = "locks/lock.txt"\n'
    )
    result = cli(mini.root, "lockfile")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Wrote locks/lock.txt\n"
    assert lockfile.parse((mini.root / "locks/lock.txt").read_text()) == {"shop": "0001_initial"}
    (mini.root / "pyproject.toml").write_text(
        '[tool.migtools]\nexclude = ["billing"]\nlockfile = "locks/lock.txt"\n'
    )
    assert cli(mini.root, "lockfile", "--check").returncode == 0
    (mini.root / "pyproject.toml").write_text('[tool.migtools]\nexclude = ["shop/"]\n')
    result = cli(mini.root, "lockfile", "--check")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "shop: listed as '0001_initial' but the app is not managed or has no migrations"
    )


def test_label_comes_from_apps_py(mini: MiniProject) -> None:
    (mini.root / "billing/apps.py").write_text(
        "from django.apps import AppConfig\n\n\nclass BillingConfig(AppConfig):\n"
        '    name = "billing"\n    label = "invoices"\n'
    )
    result = cli(mini.root, "lockfile")
    assert result.returncode == 0, result.stderr
    assert lockfile.parse(mini.lockfile.read_text()) == {
        "invoices": "0001_initial",
        "shop": "0001_initial",
    }


def test_ignored_and_untracked_files(mini: MiniProject) -> None:
    # An untracked (not ignored) new app counts, as it does for manage.py; an ignored one not.
    for name in ("fresh", "vendored"):
        (mini.root / name / "migrations").mkdir(parents=True)
        (mini.root / name / "migrations/__init__.py").write_text("")
        (mini.root / name / "migrations/0001_initial.py").write_text(
            "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
            "    dependencies = []\n    operations = []\n"
        )
    (mini.root / ".gitignore").write_text("vendored/\n")
    result = cli(mini.root, "lockfile", "--check")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "fresh: missing, expected '0001_initial'"
    assert "vendored" not in result.stderr


def test_staged_leaves_out_what_git_does_not_track(mini: MiniProject) -> None:
    """The pre-commit hook's --staged: a draft migration and an untracked new app are not part
    of the commit; the same files, once added, are."""
    assert cli(mini.root, "lockfile").returncode == 0
    subprocess.run(["git", "add", "-A"], cwd=mini.root, check=True)
    (mini.root / "shop/migrations/0002_draft.py").write_text(
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        "    dependencies = [('shop', '0001_initial')]\n    operations = []\n"
    )
    (mini.root / "fresh/migrations").mkdir(parents=True)
    (mini.root / "fresh/migrations/__init__.py").write_text("")
    (mini.root / "fresh/migrations/0001_initial.py").write_text(
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        "    dependencies = []\n    operations = []\n"
    )
    staged = cli(mini.root, "lockfile", "--check", "--staged")
    assert staged.returncode == 0, staged.stderr
    everything = cli(mini.root, "lockfile", "--check")
    assert everything.returncode == 1
    assert "fresh: missing, expected '0001_initial'" in everything.stderr
    assert "shop: lockfile says '0001_initial', latest migration is '0002_draft'" in (
        everything.stderr
    )
    subprocess.run(["git", "add", "-A"], cwd=mini.root, check=True)
    assert cli(mini.root, "lockfile", "--check", "--staged").stderr == everything.stderr


@pytest.mark.parametrize(
    ("pyproject", "message"),
    [
        ("[tool.migtools]\napps = 3\n", "[tool.migtools] apps must be a list of strings."),
        ("[tool.migtools]\nnope = 1\n", "unknown key(s) in [tool.migtools]: nope"),
        ("[tool.migtools\n", "not valid TOML"),
        ('[tool.migtools]\napps = ["ghost"]\n', "[tool.migtools] apps names ghost"),
        ('[tool.migtools]\nauth_user_model = "User"\n', "must be 'app_label.ModelName'"),
    ],
)
def test_bad_config_is_one_line_exit_2(mini: MiniProject, pyproject: str, message: str) -> None:
    (mini.root / "pyproject.toml").write_text(pyproject)
    result = cli(mini.root, "lockfile", "--check")
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_duplicate_labels_are_refused(mini: MiniProject) -> None:
    shutil.copytree(mini.root / "shop", mini.root / "tests" / "shop")
    result = cli(mini.root, "lockfile", "--check")
    assert result.returncode == 2
    assert "Several apps have the same label: 'shop' in" in result.stderr
    (mini.root / "pyproject.toml").write_text('[tool.migtools]\nexclude = ["tests/"]\n')
    assert cli(mini.root, "lockfile", "--check").returncode == 0


def test_dynamic_migration_is_a_clear_error(mini: MiniProject) -> None:
    (mini.root / "shop/migrations/0002_dyn.py").write_text(
        "from django.db import migrations\n\nDEPS = [('shop', '0001_initial')]\n\n\n"
        "class Migration(migrations.Migration):\n    dependencies = DEPS\n    operations = []\n"
    )
    result = cli(mini.root, "lockfile", "--check")
    assert result.returncode == 1
    assert "0002_dyn.py:7: not a literal list or tuple; the settings-free CLI reads" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_outside_a_git_repository(tmp_path: Path) -> None:
    result = cli(tmp_path, "lockfile", "--check")
    assert result.returncode == 1
    assert result.stderr == (
        f"error: {tmp_path} is not inside a git repository: the migtools CLI finds the "
        "migrations with git's file list.\n"
    )


def test_no_command_is_usage_exit_2(tmp_path: Path) -> None:
    result = cli(tmp_path)
    assert result.returncode == 2
    assert "usage: migtools" in result.stderr


def test_the_cli_imports_neither_django_nor_project_code(mini: MiniProject) -> None:
    probe = (
        "import sys\nfrom migtools.cli import main\ncode = main(['lockfile', '--check'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('django', 'proj', 'shop', 'billing', 'git', 'pglast')))\nsys.exit(code)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=mini.root, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"


def test_remembered_leaves_follow_every_file_change(mini: MiniProject) -> None:
    old = time.time() - 60
    for path in mini.root.rglob("*.py"):
        os.utime(path, (old, old))
    assert cli(mini.root, "lockfile", "--check").returncode == 0
    remembered = mini.root / ".git" / "migtools" / "cli-graph.marshal"
    assert remembered.is_file()
    assert cli(mini.root, "lockfile", "--check").returncode == 0  # from what it remembered
    # An in-place edit of a migration (new stamp): shop now has two leaves.
    (mini.root / "shop/migrations/0002_a.py").write_text(
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        "    dependencies = [('shop', '0001_initial')]\n    operations = []\n"
    )
    os.utime(mini.root / "shop/migrations/0002_a.py", (old, old))
    result = cli(mini.root, "lockfile", "--check")
    assert result.returncode == 1
    assert "shop: lockfile says '0001_initial', latest migration is '0002_a'" in result.stderr
    second = mini.root / "shop/migrations/0002_b.py"
    second.write_text((mini.root / "shop/migrations/0002_a.py").read_text())
    os.utime(second, (old, old))
    assert "Conflicting migrations" in cli(mini.root, "lockfile", "--check").stderr
    # A same-size edit with a new mtime is seen too: 0002_b now follows 0002_a.
    second.write_text(second.read_text().replace("'0001_initial'", "'0002_a'      "))
    os.utime(second, (old + 1, old + 1))
    result = cli(mini.root, "lockfile", "--check")
    assert "latest migration is '0002_b'" in result.stderr
