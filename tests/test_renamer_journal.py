"""The update_migration journal read as untrusted input (issue: "a journal that cannot be turned
against the tree"): hand-written journals are refused in one line with nothing changed, a run
whose merge was aborted after a SIGKILL is cleaned up, a moved checkout completes."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.test_renamer_crash import KILL_AT, _assert_resolved, _git, _manage, _project
from tests.test_update_migration import MigRepo


def _journal(root: Path) -> Path:
    return root / ".git" / "migtools" / "journal.json"


def _killed_journal(mig: MigRepo, event: int = 4) -> dict[str, object]:
    """The journal a run killed before its ``event``th event leaves (a real one)."""
    proc = _manage(mig.root, **{KILL_AT: str(event)})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    data = json.loads(_journal(mig.root).read_text())
    assert isinstance(data, dict)
    return data


def _snapshot_all(mig: MigRepo, outside: Path) -> dict[str, bytes]:
    snap = mig.snapshot()
    snap.update({f"outside/{p.name}": p.read_bytes() for p in outside.glob("*")})
    return snap


def _tampered(
    tmp_path: Path, edit: object
) -> tuple[MigRepo, Path, subprocess.CompletedProcess[str], dict[str, bytes]]:
    mig = _project(tmp_path / "repo")
    outside = tmp_path / "outside"
    outside.mkdir()
    data = _killed_journal(mig)
    # a real killed run has already written some files: undo them so the "nothing changed"
    # check below is about the tampered journal alone
    files = data["files"]
    assert isinstance(files, list)
    assert callable(edit)
    edit(data, mig)
    _journal(mig.root).write_text(json.dumps(data))
    before = _snapshot_all(mig, outside)
    proc = _manage(mig.root)
    return mig, outside, proc, before


def _settings_rewrite(data: dict[str, object], mig: MigRepo) -> None:
    files = data["files"]
    assert isinstance(files, list)
    files.insert(
        0,
        {
            "path": "settings.py",
            "old": None,
            "new": "EVIL = 1\n",
            "mode": 0o755,
            "in_git_dir": False,
        },
    )


def _manage_delete(data: dict[str, object], mig: MigRepo) -> None:
    (mig.root / "manage.py").write_text("print('manage')\n")
    files = data["files"]
    assert isinstance(files, list)
    files.append(
        {
            "path": "manage.py",
            "old": "print('manage')\n",
            "new": None,
            "mode": 0o644,
            "in_git_dir": False,
        }
    )


def _outside_write(data: dict[str, object], mig: MigRepo) -> None:
    files = data["files"]
    assert isinstance(files, list)
    files.insert(
        0,
        {
            "path": "../outside/evil.py",
            "old": None,
            "new": "x = 1\n",
            "mode": 0o755,
            "in_git_dir": False,
        },
    )


def _absolute_write(data: dict[str, object], mig: MigRepo) -> None:
    files = data["files"]
    assert isinstance(files, list)
    target = mig.root.parent / "outside" / "evil.py"
    files.insert(
        0, {"path": str(target), "old": None, "new": "x = 1\n", "mode": 0o755, "in_git_dir": False}
    )


def _symlink_escape(data: dict[str, object], mig: MigRepo) -> None:
    # a migrations-looking directory inside the tree that is a symlink to outside
    (mig.root / "tests" / "linked").symlink_to(mig.root.parent / "outside")
    files = data["files"]
    assert isinstance(files, list)
    files.insert(
        0,
        {
            "path": "tests/linked/test_evil.py",
            "old": None,
            "new": "x = 1\n",
            "mode": 0o644,
            "in_git_dir": False,
        },
    )


def _index_settings(data: dict[str, object], mig: MigRepo) -> None:
    entries = data["index_new"]
    assert isinstance(entries, list)
    entries.append({"mode": "100644", "sha": "0" * 40, "stage": 0, "path": "settings.py"})


def _git_dir_file(data: dict[str, object], mig: MigRepo) -> None:
    files = data["files"]
    assert isinstance(files, list)
    files.insert(
        0,
        {
            "path": "hooks/pre-commit",
            "old": None,
            "new": "#!/bin/sh\n",
            "mode": 0o755,
            "in_git_dir": True,
        },
    )


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (
            _settings_rewrite,
            "settings.py is not a migration file, the lockfile or a migration test of this project",
        ),
        (
            _manage_delete,
            "manage.py is not a migration file, the lockfile or a migration test of this project",
        ),
        (_outside_write, "'../outside/evil.py' is not a path inside the work tree"),
        (_absolute_write, "is not a path inside the work tree"),
        (_symlink_escape, "tests/linked/test_evil.py resolves outside the work tree"),
        (_index_settings, "settings.py is not a migration file"),
        (_git_dir_file, "'hooks/pre-commit' is not a file update_migration keeps under $GIT_DIR"),
    ],
)
def test_a_tampered_journal_is_refused_and_changes_nothing(
    tmp_path: Path, edit: object, reason: str
) -> None:
    mig, outside, proc, before = _tampered(tmp_path, edit)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert reason in lines[0]
    assert "Nothing was changed." in lines[0] and "delete" in lines[0]
    assert "Traceback" not in proc.stderr
    assert _snapshot_all(mig, outside) == before
    assert not (outside / "evil.py").exists()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"\xff\xfe{not utf-8", "is not UTF-8 text"),
        (
            json.dumps({"version": 2, "files": [{"path": None, "old": None, "new": "x"}]}).encode(),
            "path: None is not a string",
        ),
        (
            json.dumps(
                {"version": 2, "files": [{"path": "a\u0000b.py", "old": None, "new": "x"}]}
            ).encode(),
            "is not a path inside the work tree",
        ),
        (b"[1, 2]", "not a JSON object"),
    ],
)
def test_an_unreadable_journal_is_one_line_with_the_way_out(
    tmp_path: Path, content: bytes, says: str
) -> None:
    mig = _project(tmp_path / "repo")
    _journal(mig.root).parent.mkdir(parents=True, exist_ok=True)
    _journal(mig.root).write_bytes(content)
    before = mig.snapshot()

    proc = _manage(mig.root)

    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert says in lines[0]
    assert f"delete {_journal(mig.root)} to give up on that run" in lines[0]
    assert mig.snapshot() == before


def test_sigkill_then_merge_abort_then_a_run_cleans_up(tmp_path: Path) -> None:
    """At every kill point: `git merge --abort`, then update_migration drops the run, removes
    what it had created, and leaves a clean tree."""
    base = _project(tmp_path / "base")
    head = _git(base.root, "rev-parse", "HEAD")
    cleaned_counts = []
    for event in range(1, 40):
        root = tmp_path / f"kill{event}"
        shutil.copytree(base.root, root, symlinks=True)
        # a copy has new stat data: refresh it as any git command in a real checkout would
        subprocess.run(["git", "update-index", "-q", "--refresh"], cwd=root, check=False)
        proc = _manage(root, **{KILL_AT: str(event)})
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        pending = _journal(root).exists()
        abort = subprocess.run(
            ["git", "merge", "--abort"], cwd=root, capture_output=True, text=True
        )
        assert abort.returncode == 0, abort.stderr

        again = _manage(root)

        assert again.returncode == 0, again.stderr
        if pending:
            assert "the merge this run belonged to is gone; cleaned up " in again.stdout
            cleaned_counts.append(int(again.stdout.split("cleaned up ")[1].split()[0]))
        assert again.stdout.rstrip().endswith("No migration conflicts to resolve."), again.stdout
        assert _git(root, "status", "--porcelain") == "", (event, again.stdout)
        assert _git(root, "rev-parse", "HEAD") == head
        assert not _journal(root).exists()
        shutil.rmtree(root)
    else:
        pytest.fail("update_migration never finished")
    assert event > 5
    assert max(cleaned_counts) > 0  # some kill points left files of the run behind


def test_a_killed_run_completes_in_a_moved_checkout(tmp_path: Path) -> None:
    base = _project(tmp_path / "base")
    proc = _manage(base.root, **{KILL_AT: "5"})
    assert proc.returncode == -signal.SIGKILL
    journal = json.loads(_journal(base.root).read_text())
    assert all(not Path(f["path"]).is_absolute() for f in journal["files"])
    moved = tmp_path / "elsewhere" / "checkout"
    moved.parent.mkdir()
    shutil.move(base.root, moved)

    again = _manage(moved)

    assert again.returncode == 0, again.stderr
    assert "update_migration was interrupted earlier" in again.stdout
    assert "completed it" in again.stdout
    _assert_resolved(moved, base.package)


def test_sigkill_at_a_rebase_stop_then_rebase_abort_cleans_up(tmp_path: Path) -> None:
    mig = _project(tmp_path / "repo")
    root = mig.root
    subprocess.run(["git", "merge", "--abort"], cwd=root, check=True)
    head = _git(root, "rev-parse", "HEAD")
    proc = subprocess.run(["git", "rebase", "main"], cwd=root, capture_output=True, text=True)
    assert proc.returncode != 0  # stops at the lockfile conflict
    killed = _manage(root, **{KILL_AT: "6"})
    assert killed.returncode == -signal.SIGKILL
    assert _journal(root).exists()
    subprocess.run(["git", "rebase", "--abort"], cwd=root, check=True, capture_output=True)

    again = _manage(root)

    assert again.returncode == 0, again.stderr
    assert "the rebase stop this run belonged to is gone; cleaned up " in again.stdout
    assert _git(root, "status", "--porcelain") == ""
    assert _git(root, "rev-parse", "HEAD") == head
    assert not _journal(root).exists()
    assert not (root / ".git" / "migtools" / "renames.json").exists()
