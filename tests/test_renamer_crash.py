"""Crash safety of update_migration: SIGKILL before each of its write and git events, on a real
merge, and one plain run afterwards finishes the job (GUIDE: "update_migration journal")."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.test_update_migration import MigRepo, base_history

# tests/crashhook/sitecustomize.py, put first on the child's PYTHONPATH, kills the process
# before the Nth write or git event of the renamer when this variable says N.
KILL_AT = "MIGTOOLS_TEST_KILL_AT"
CRASH_HOOK = Path(__file__).resolve().parent / "crashhook"
Manage = Callable[..., subprocess.CompletedProcess[str]]
TEST_FILE = (
    "class T:\n    app = 'alpha'\n    migrate_from = '0002_step2'\n    migrate_to = '0003_update'\n"
)


def _project(root: Path) -> MigRepo:
    """A project (own settings, no database at all) mid-merge: the branch adds a chain of two
    in alpha, a dependent in beta and a migration test naming the first; main adds one."""
    mig = MigRepo(root, apps=("alpha", "beta"))
    (root / "settings.py").write_text(
        "SECRET_KEY = 'x'\nUSE_TZ = True\nDEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'\n"
        "INSTALLED_APPS = ['migtools', 'tests.testapps.alpha', 'tests.testapps.beta']\n"
        "DATABASES = {}\n"
        f"MIGRATION_MODULES = {{'alpha': '{mig.package}.alpha', 'beta': '{mig.package}.beta'}}\n"
        "MIGTOOLS_APPS = ['alpha', 'beta']\n"
    )
    with mig.active():
        base_history(mig)
        mig.git("checkout", "-q", "-b", "feature")
        mig.add("alpha", "0003_update", [("alpha", "0002_step2")])
        mig.add("alpha", "0004_update", [("alpha", "0003_update")])
        mig.add("beta", "0001_initial", [("alpha", "0004_update")])
        (root / "tests").mkdir()
        (root / "tests" / "test_0003_update.py").write_text(TEST_FILE)
        mig.write_lockfile()
        mig.commit("feature")
        mig.git("checkout", "-q", "main")
        mig.add("alpha", "0003_main", [("alpha", "0002_step2")])
        mig.write_lockfile()
        mig.commit("main")
    mig.git("checkout", "-q", "feature")
    assert mig.git("merge", "main", check=False).returncode == 1
    return mig


def _manage(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "django", "update_migration", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env=_env(root, env),
    )


def _env(root: Path, extra: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k != KILL_AT}
    return {
        **base,
        "DJANGO_SETTINGS_MODULE": "settings",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": os.pathsep.join(
            [str(CRASH_HOOK), str(root), str(Path(__file__).resolve().parents[1])]
        ),
        **extra,
    }


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


def _assert_resolved(root: Path, package: str) -> None:
    alpha = root / package / "alpha"
    assert sorted(p.name for p in alpha.glob("0*.py")) == [
        "0001_step1.py",
        "0002_step2.py",
        "0003_main.py",
        "0004_update.py",
        "0005_update.py",
    ]
    assert '("alpha", "0003_main")' in (alpha / "0004_update.py").read_text()
    assert '("alpha", "0004_update")' in (alpha / "0005_update.py").read_text()
    assert '("alpha", "0005_update")' in (root / package / "beta" / "0001_initial.py").read_text()
    assert not (root / "tests" / "test_0003_update.py").exists()
    assert (root / "tests" / "test_0004_update.py").read_text() == TEST_FILE.replace(
        "0002_step2", "0003_main"
    ).replace("0003_update", "0004_update")
    assert _git(root, "ls-files", "-u") == ""  # nothing conflicted
    assert _git(root, "diff", "--name-only") == ""  # everything staged
    assert _git(root, "ls-files", "--others", "--exclude-standard") == ""
    assert not (root / ".git" / "migtools" / "journal.json").exists()
    check = subprocess.run(
        [sys.executable, "-m", "django", "migrations_lockfile", "--check"],
        cwd=root,
        capture_output=True,
        text=True,
        env=_env(root, {}),
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_sigkill_before_each_event_then_one_plain_run_finishes(tmp_path: Path) -> None:
    base = _project(tmp_path / "base")
    killed_at: list[str] = []
    for event in range(1, 40):
        root = tmp_path / f"kill{event}"
        shutil.copytree(base.root, root, symlinks=True)
        proc = _manage(root, **{KILL_AT: str(event)})
        if proc.returncode == 0:
            break  # fewer events than that: the run went through
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        log = root / ".git" / "migtools" / "journal.log"
        killed_at.append(log.read_text().splitlines()[-1] if log.exists() else "(no step yet)")
        pending = (root / ".git" / "migtools" / "journal.json").exists()
        assert pending == (event > 1)  # the journal is the first event

        again = _manage(root)

        assert again.returncode == 0, again.stderr
        said = "update_migration was interrupted earlier" in again.stdout
        assert said == pending, again.stdout
        if pending:
            assert (
                "completed it: alpha.0003_update -> 0004_update, alpha.0004_update -> "
                "0005_update." in again.stdout
            )
        assert again.stdout.rstrip().endswith("Next: git merge --continue"), again.stdout
        _assert_resolved(root, base.package)
        shutil.rmtree(root)
    else:
        pytest.fail("update_migration never finished")
    # journal, 5 writes, 2 deletions, the index, the end: every one was a kill point
    assert event == 11, killed_at
    _assert_resolved(root, base.package)


def test_a_kill_before_the_journal_changes_nothing(tmp_path: Path) -> None:
    base = _project(tmp_path / "base")
    before = base.snapshot()

    proc = _manage(base.root, **{KILL_AT: "1"})

    assert proc.returncode == -signal.SIGKILL
    assert base.snapshot() == before
    assert not (base.root / ".git" / "migtools" / "journal.json").exists()


def test_no_database_configured_only_update_applied_needs_one(tmp_path: Path) -> None:
    base = _project(tmp_path / "base")
    before = base.snapshot()

    proc = _manage(base.root, "--update-applied")

    assert proc.returncode == 1
    assert proc.stderr == (
        "CommandError: --update-applied needs the database, but database 'default' is not "
        "configured (DATABASES is empty). Nothing was changed.\n"
    )
    assert base.snapshot() == before
