from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from migtools.errors import GitRefError, GitRepoError, NotAGitRepoError
from migtools.gitrepo import MERGE, REBASE, GitRepo, IndexEntry

ENV = {**os.environ, "GIT_EDITOR": "true"}


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["git", *args], cwd=root, env=ENV, capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def write_commit(root: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write_commit(
        root, {"lock.txt": "a: 1\n\nb: 1\n", "app/migrations/0001_initial.py": "x\n"}, "base"
    )
    return root


def diverge(root: Path) -> None:
    git(root, "checkout", "-q", "-b", "feature")
    write_commit(
        root, {"lock.txt": "a: 2mine\n\nb: 1\n", "app/migrations/0002_mine.py": "m\n"}, "mine"
    )
    git(root, "checkout", "-q", "main")
    write_commit(
        root, {"lock.txt": "a: 2main\n\nb: 1\n", "app/migrations/0002_main.py": "t\n"}, "main"
    )


def migration_files(root: Path) -> list[Path]:
    return sorted((root / "app" / "migrations").glob("*.py"))


def test_find_and_root(root: Path, tmp_path: Path) -> None:
    repo = GitRepo.find(root / "app" / "migrations" / "not-yet-there.py")
    assert repo.root == root.resolve()
    assert repo.git_dir == (root / ".git").resolve()
    with pytest.raises(NotAGitRepoError):
        GitRepo.find(tmp_path / "elsewhere" / "lock.txt")


def test_main_branch_detection(root: Path) -> None:
    repo = GitRepo.find(root)
    assert repo.main_branch() == "main"
    assert repo.main_branch("main") == "main"
    with pytest.raises(GitRepoError, match="MIGTOOLS_MAIN_BRANCH is 'trunk', but no such"):
        repo.main_branch("trunk")
    git(root, "branch", "-m", "main", "master")
    assert repo.main_branch() == "master"
    git(root, "update-ref", "refs/remotes/origin/develop", "HEAD")
    git(root, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/develop")
    assert repo.main_branch() == "origin/HEAD"
    git(root, "checkout", "-q", "-b", "other")
    git(root, "branch", "-D", "master")
    git(root, "symbolic-ref", "--delete", "refs/remotes/origin/HEAD")
    with pytest.raises(GitRepoError, match="Cannot tell which branch is main"):
        repo.main_branch()


def test_merge_of_main_into_the_branch(root: Path) -> None:
    diverge(root)
    git(root, "checkout", "-q", "feature")
    repo = GitRepo.find(root)
    assert repo.state() is None and repo.next_step() is None
    assert git(root, "merge", "main", check=False).returncode == 1

    assert repo.state() == MERGE
    assert repo.next_step() == "git merge --continue"
    mine = repo.mine("main", migration_files(root))
    assert sorted(p.name for p in mine) == ["0002_mine.py"]
    stages = repo.unmerged_stages(root / "lock.txt")
    assert stages is not None
    assert (stages.base, stages.ours, stages.theirs) == (
        "a: 1\n\nb: 1\n",
        "a: 2mine\n\nb: 1\n",
        "a: 2main\n\nb: 1\n",
    )
    assert repo.unmerged_stages(root / "app" / "migrations" / "0001_initial.py") is None


def test_merge_of_the_branch_into_main_flips_ours(root: Path) -> None:
    diverge(root)
    repo = GitRepo.find(root)
    git(root, "merge", "feature", check=False)
    stages = repo.unmerged_stages(root / "lock.txt")
    assert stages is not None and stages.ours == "a: 2main\n\nb: 1\n"
    assert sorted(p.name for p in repo.mine("main", migration_files(root))) == ["0002_mine.py"]


def test_rebase_state_and_upstream(root: Path) -> None:
    diverge(root)
    git(root, "checkout", "-q", "feature")
    repo = GitRepo.find(root)
    assert git(root, "rebase", "main", check=False).returncode == 1

    assert repo.state() == REBASE
    assert repo.next_step() == "git rebase --continue"
    assert repo.rebase_onto() == git(root, "rev-parse", "main").stdout.strip()
    stages = repo.unmerged_stages(root / "lock.txt")
    assert stages is not None and stages.ours == "a: 2main\n\nb: 1\n"  # HEAD is upstream
    assert sorted(p.name for p in repo.mine("main", migration_files(root))) == ["0002_mine.py"]


def test_stage_tracked_and_index_entries(root: Path) -> None:
    repo = GitRepo.find(root)
    old = root / "app" / "migrations" / "0001_initial.py"
    new = root / "app" / "migrations" / "0002_initial.py"
    untracked = root / "notes.txt"
    untracked.write_text("n\n")
    assert repo.tracked([old, untracked]) == {old}
    [entry] = repo.index_entries([old])
    assert (entry.mode, entry.stage, entry.path) == ("100644", 0, "app/migrations/0001_initial.py")
    assert repo.blob_text(entry.sha) == "x\n"

    old.rename(new)
    sha = repo.store_blob(b"x\n")
    assert sha == entry.sha
    repo.set_index(
        ["app/migrations/0001_initial.py"],
        [IndexEntry("100644", sha, 0, "app/migrations/0002_initial.py")],
    )
    other = root / "lock.txt"
    other.write_text("a: 9\n\nb: 1\n")
    repo.stage([other])
    status = git(root, "status", "--porcelain").stdout
    assert "R  app/migrations/0001_initial.py -> app/migrations/0002_initial.py" in status
    assert "M  lock.txt" in status
    assert "?? notes.txt" in status


def test_index_writes_go_through_git_and_its_lock(root: Path) -> None:
    repo = GitRepo.find(root)
    (root / ".git" / "index.lock").write_text("")
    with pytest.raises(GitRepoError, match=r"index\.lock"):
        repo.set_index(["lock.txt"], [])
    (root / ".git" / "index.lock").unlink()
    assert repo.tracked([root / "lock.txt"]) == {root / "lock.txt"}


def test_modified_lists_only_working_tree_edits_of_merged_files(root: Path) -> None:
    repo = GitRepo.find(root)
    lock, migration = root / "lock.txt", root / "app" / "migrations" / "0001_initial.py"
    assert repo.modified([lock, migration]) == set()
    migration.write_text("edited\n")
    assert repo.modified([lock, migration]) == {migration}
    git(root, "add", "-A")
    assert repo.modified([lock, migration]) == set()  # staged: not "dirty"


def test_unmerged_paths(root: Path) -> None:
    diverge(root)
    repo = GitRepo.find(root)
    assert repo.unmerged_paths() == []
    git(root, "merge", "feature", check=False)
    assert repo.unmerged_paths() == ["lock.txt"]
    assert repo.modified([root / "lock.txt"]) == set()


def test_a_ref_that_does_not_exist_says_git_s_reason(root: Path) -> None:
    repo = GitRepo.find(root)
    with pytest.raises(GitRefError) as info:
        repo.require_commit("nosuch")
    assert info.value.returncode == 2
    assert str(info.value) == (
        f"Git ref 'nosuch' does not exist in {root.resolve()}: fatal: bad revision 'nosuch'"
    )
    assert repo.require_commit("HEAD") == git(root, "rev-parse", "HEAD").stdout.strip()


def test_changed_since(root: Path) -> None:
    repo = GitRepo.find(root)
    write_commit(root, {"app/migrations/0002_next.py": "y\n"}, "next")
    (root / "scratch.py").write_text("s\n")
    assert repo.changed_since("HEAD~1") == {
        (root / "app" / "migrations" / "0002_next.py").resolve(),
        (root / "scratch.py").resolve(),
    }


def test_changes_since_where_the_branch_forked(root: Path) -> None:
    """--since main on a branch: what the branch changed since it forked, not what main did
    after; --until: commits only; drafts; trees of other commits."""
    repo = GitRepo.find(root)
    mig = root / "app" / "migrations"
    diverge(root)  # main: 0002_main; feature: 0002_mine (both off "base")
    git(root, "checkout", "-q", "feature")
    base = git(root, "merge-base", "main", "feature").stdout.strip()
    assert repo.base_of("main") == base
    assert repo.base_of("main", "feature") == base
    (mig / "0003_draft.py").write_text("d\n")
    assert repo.changed_since("main") == {
        (mig / "0002_mine.py").resolve(),
        (root / "lock.txt").resolve(),
        (mig / "0003_draft.py").resolve(),
    }
    assert repo.changed_since("main", untracked=False) == {
        (mig / "0002_mine.py").resolve(),
        (root / "lock.txt").resolve(),
    }
    assert repo.changed_since("main", "feature") == {
        (mig / "0002_mine.py").resolve(),
        (root / "lock.txt").resolve(),
    }
    assert repo.untracked_in([mig]) == {(mig / "0003_draft.py").resolve()}
    assert repo.existing_at("main", migration_files(root)) == {mig / "0001_initial.py"}
    assert repo.show("main", mig / "0002_main.py") == "t\n"
    assert repo.show("feature", mig / "0002_main.py") is None
    with pytest.raises(GitRefError):
        repo.changed_since("main", "nosuch")


def test_a_repository_without_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "a.py").write_text("a\n")
    repo = GitRepo.find(tmp_path)
    assert repo.existing_at("HEAD", [tmp_path / "a.py"]) == set()
    assert repo.untracked_in([tmp_path]) == {(tmp_path / "a.py").resolve()}
    with pytest.raises(GitRefError, match="Git ref 'HEAD' does not exist"):
        repo.changed_since("HEAD")
