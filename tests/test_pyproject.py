"""One base directory rule (``migtools.pyproject``): in a monorepo with ``backend/pyproject.toml``,
``manage.py`` and the ``migtools`` CLI (run in ``backend/``, or from the repository root with
``--config``) use the same files, in a real git repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from migtools import pyproject
from tests.miniproject import make_project
from tests.test_cli import cli, git_init

MIGRATION = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [{deps}]
    operations = [migrations.AddField("item", "f{n}", models.IntegerField(null=True))]
"""

INITIAL = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    operations = [
        migrations.CreateModel("Item", [("id", models.BigAutoField(primary_key=True))]),
    ]
"""


def manage(backend: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python [backend/]manage.py ARGS`` from ``cwd`` (no database is contacted)."""
    env = {**os.environ, "PYTHONPATH": str(backend), "PYTHONWARNINGS": "ignore"}
    env["DATABASE_URL"] = "postgres://u:p@127.0.0.1:9/x"
    env.pop("DJANGO_SETTINGS_MODULE", None)
    script = os.path.relpath(backend / "manage.py", cwd)
    return subprocess.run(
        [sys.executable, script, *args], cwd=cwd, env=env, capture_output=True, text=True
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    backend = root / "backend"
    make_project(backend, extra_settings="MIGTOOLS_APPS = ['shop']\n")
    (backend / "pyproject.toml").write_text(
        '[project]\nname = "backend"\n\n[tool.migtools]\nlockfile = "migrations_lockfile.txt"\n'
    )
    migrations = backend / "shop" / "migrations"
    migrations.mkdir()
    (migrations / "__init__.py").write_text("")
    (migrations / "0001_initial.py").write_text(INITIAL)
    (root / "README.md").write_text("monorepo\n")
    git_init(root)
    return root


def _add_migration(repo: Path, n: int) -> None:
    migrations = repo / "backend" / "shop" / "migrations"
    previous = sorted(p.stem for p in migrations.glob("0*.py"))[-1]
    (migrations / f"{n:04d}_f{n}.py").write_text(
        MIGRATION.format(deps=f"('shop', '{previous}')", n=n)
    )


def test_manage_py_and_the_cli_use_one_lockfile(repo: Path) -> None:
    backend = repo / "backend"
    lock = backend / "migrations_lockfile.txt"
    written = manage(backend, repo, "migrations_lockfile")
    assert written.returncode == 0, written.stderr
    assert written.stdout.strip() == "Wrote backend/migrations_lockfile.txt"
    assert lock.read_text().strip().endswith("shop: 0001_initial")
    assert not (repo / "migrations_lockfile.txt").exists()

    in_backend = cli(backend, "lockfile", "--check")
    from_root = cli(repo, "lockfile", "--check", "--config", "backend/pyproject.toml")
    django = manage(backend, backend, "migrations_lockfile", "--check")
    assert in_backend.returncode == from_root.returncode == django.returncode == 0
    assert in_backend.stdout.strip() == "migrations_lockfile.txt is up to date."
    assert from_root.stdout.strip() == "backend/migrations_lockfile.txt is up to date."
    assert django.stdout.strip() == "migrations_lockfile.txt is up to date."
    # Without --config the root has no [tool.migtools]: the CLI looks at the root's lockfile.
    assert cli(repo, "lockfile", "--check").returncode == 1

    # A new migration makes the one lockfile stale for all three.
    _add_migration(repo, 2)
    stale = [
        cli(backend, "lockfile", "--check"),
        cli(repo, "lockfile", "--check", "--config", "backend/pyproject.toml"),
        manage(backend, backend, "migrations_lockfile", "--check"),
        manage(backend, repo, "migrations_lockfile", "--check"),
    ]
    assert [r.returncode for r in stale] == [1, 1, 1, 1]
    assert all("shop" in r.stderr and "0002_f2" in r.stderr for r in stale)
    assert "backend/migrations_lockfile.txt" in stale[1].stderr + stale[3].stderr

    # Written by the CLI from the root, checked by manage.py: the same file.
    fixed = cli(repo, "lockfile", "--config", "backend")
    assert fixed.returncode == 0 and "Wrote backend/migrations_lockfile.txt" in fixed.stdout
    assert "shop: 0002_f2" in lock.read_text()
    assert manage(backend, backend, "migrations_lockfile", "--check").returncode == 0


def test_relative_settings_resolve_against_the_project_directory(repo: Path) -> None:
    """A relative MIGTOOLS_LOCKFILE_PATH / MIGTOOLS_TABLE_SIZES means the same file whatever the
    current directory: relative to the directory of backend/pyproject.toml."""
    backend = repo / "backend"
    (backend / "locks").mkdir()
    settings = backend / "proj" / "settings.py"
    settings.write_text(
        settings.read_text() + 'MIGTOOLS_LOCKFILE_PATH = "locks/lock.txt"\n'
        'MIGTOOLS_TABLE_SIZES = "locks/sizes.txt"\n'
    )
    for cwd in (repo, backend, backend / "shop"):
        result = manage(backend, cwd, "migrations_lockfile")
        assert result.returncode == 0, result.stderr
    assert (backend / "locks" / "lock.txt").is_file()
    assert not (repo / "locks").exists() and not (backend / "shop" / "locks").exists()
    shell = manage(
        backend,
        repo,
        "shell",
        "-c",
        "from migtools import project; print(project.table_sizes_path())",
    )
    assert shell.stdout.strip().splitlines()[-1] == str(
        (backend / "locks" / "sizes.txt").resolve()
    ), shell.stderr
    (backend / "pyproject.toml").write_text(
        '[tool.migtools]\nlockfile = "locks/lock.txt"\nmigration_test_dirs = ["shop"]\n'
    )
    settings.write_text(
        settings.read_text().replace('MIGTOOLS_LOCKFILE_PATH = "locks/lock.txt"\n', "")
    )
    # Read from [tool.migtools] when the setting is unset, by both tools.
    assert manage(backend, repo, "migrations_lockfile", "--check").returncode == 0
    assert cli(repo, "lockfile", "--check", "--config", "backend/pyproject.toml").returncode == 0


def test_bad_config_path_is_one_line_exit_2(repo: Path) -> None:
    missing = cli(repo, "lockfile", "--check", "--config", "nope/pyproject.toml")
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: --config nope/pyproject.toml: no such file."
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\n')
    empty = cli(repo, "lockfile", "--check", "--config", "pyproject.toml")
    assert empty.returncode == 2 and "has no [tool.migtools] table" in empty.stderr


def test_resolve_and_find(tmp_path: Path) -> None:
    assert pyproject.resolve("a/b.txt", tmp_path) == tmp_path / "a" / "b.txt"
    assert pyproject.resolve(tmp_path / "x", Path("/elsewhere")) == tmp_path / "x"
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text("[tool.migtools]\napps = ['a']\n")
    (tmp_path / "sub" / "pyproject.toml").write_text("[project]\nname = 'no-table'\n")
    table, source = pyproject.find(tmp_path / "sub" / "deeper", tmp_path)
    assert source == tmp_path / "pyproject.toml" and table == {"apps": ["a"]}
    assert pyproject.find(tmp_path / "sub" / "deeper", tmp_path / "sub") == ({}, None)
