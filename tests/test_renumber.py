"""The renumber core: planning, and all-or-nothing writes (a failure at every step restores every
byte of the working tree and the git index)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from migtools.errors import RenumberError, RenumberWriteError
from migtools.gitrepo import GitRepo
from migtools.renamer import apply as renamer
from migtools.renamer import plan as renumber
from migtools.renamer.inputs import gather
from tests.test_update_migration import MigRepo, base_history

pytestmark = pytest.mark.django_db


class Boom(Exception):
    pass


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MigRepo]:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    with MigRepo(tmp_path / "repo").active() as mig_repo:
        yield mig_repo


def busy_conflict(repo: MigRepo) -> None:
    """A merge in progress whose resolution touches every kind of file: a chain of two whose new
    names collide with old ones, a dependent in another app, a migration test named after a
    moved migration, and the conflicted lockfile."""
    base_history(repo)
    repo.git("checkout", "-q", "-b", "feature")
    repo.add("alpha", "0003_update", [("alpha", "0002_step2")])
    repo.add("alpha", "0004_update", [("alpha", "0003_update")])
    repo.add("beta", "0001_initial", [("alpha", "0004_update")])
    tests = repo.root / "tests"
    tests.mkdir()
    (tests / "test_0003_update.py").write_text(
        "class T:\n    app = 'alpha'\n    migrate_from = '0002_step2'\n"
        "    migrate_to = '0003_update'\n"
    )
    repo.write_lockfile()
    repo.commit("feature")
    repo.git("checkout", "-q", "main")
    repo.add("alpha", "0003_main", [("alpha", "0002_step2")])
    repo.write_lockfile()
    repo.commit("main")
    repo.git("checkout", "-q", "feature")
    assert repo.git("merge", "main", check=False).returncode == 1


def make_plan(repo: MigRepo) -> tuple[GitRepo, renumber.Plan]:
    git_repo = GitRepo.find(repo.lockfile)
    return git_repo, renumber.plan(gather(git_repo))


def test_plan_of_a_busy_conflict(repo: MigRepo) -> None:
    busy_conflict(repo)
    _git_repo, plan = make_plan(repo)

    assert [(a.app_label, a.main_leaf, a.chain, a.new_names) for a in plan.apps] == [
        ("alpha", "0003_main", ["0003_update", "0004_update"], ["0004_update", "0005_update"])
    ]
    assert [(r.old, r.new) for r in plan.renames] == [
        ("0003_update", "0004_update"),
        ("0004_update", "0005_update"),
    ]
    assert plan.moved == [("alpha", "0003_update"), ("alpha", "0004_update")]
    changed = sorted((plan.relative(c.source), plan.relative(c.path)) for c in plan.changes)
    alpha, beta = f"{repo.package}/alpha", f"{repo.package}/beta"
    assert changed == sorted(
        [
            (f"{alpha}/0003_update.py", f"{alpha}/0004_update.py"),
            (f"{alpha}/0004_update.py", f"{alpha}/0005_update.py"),
            (f"{beta}/0001_initial.py", f"{beta}/0001_initial.py"),
            ("tests/test_0003_update.py", "tests/test_0004_update.py"),
            ("migrations_lockfile.txt", "migrations_lockfile.txt"),
        ]
    )
    assert plan.new_graph.leaves("alpha") == ["0005_update"]
    assert plan.stage_lockfile


def test_a_failure_at_every_write_step_restores_every_byte(repo: MigRepo) -> None:
    busy_conflict(repo)
    before = repo.snapshot()
    steps: list[str] = []
    index = 0
    while True:
        git_repo, plan = make_plan(repo)
        calls: list[str] = []

        def fail_at(description: str, calls: list[str] = calls, index: int = index) -> None:
            calls.append(description)
            if len(calls) > index:
                raise Boom(f"injected at {description}")

        try:
            renamer.apply(plan, git_repo, before_step=fail_at)
        except RenumberWriteError as exc:
            assert str(exc) == (
                f"Writing the changes failed (Boom: injected at {calls[-1]}); every file was "
                "restored, nothing changed."
            )
            assert repo.snapshot() == before, f"not restored after a failure at {calls[-1]}"
            steps.append(calls[-1])
            index += 1
            continue
        break
    alpha, beta = f"{repo.package}/alpha", f"{repo.package}/beta"
    assert steps == [
        "journal",
        "write migrations_lockfile.txt",
        f"write {alpha}/0004_update.py",
        f"write {alpha}/0005_update.py",
        f"write {beta}/0001_initial.py",
        "write tests/test_0004_update.py",
        f"delete {alpha}/0003_update.py",
        "delete tests/test_0003_update.py",
        "index",
        "finish",
    ]
    assert renumber.verify(plan) == []
    repo.check_resolved()


def test_a_real_git_failure_restores_every_byte(repo: MigRepo) -> None:
    busy_conflict(repo)
    before = repo.snapshot()
    git_repo, plan = make_plan(repo)
    lock = repo.root / ".git" / "index.lock"
    calls: list[str] = []

    def lock_index_before_staging(description: str) -> None:
        calls.append(description)
        if description == "index":
            lock.write_text("")  # another git process holds the index

    with pytest.raises(RenumberWriteError, match=r"index\.lock"):
        renamer.apply(plan, git_repo, before_step=lock_index_before_staging)
    lock.unlink()
    assert repo.snapshot() == before


def test_a_file_changed_after_planning_is_refused(repo: MigRepo) -> None:
    busy_conflict(repo)
    git_repo, plan = make_plan(repo)
    target = repo.path("beta", "0001_initial")
    target.write_text(target.read_text() + "# edited meanwhile\n")
    before = repo.snapshot()

    with pytest.raises(RenumberError, match=r"0001_initial\.py changed while update_migration ran"):
        renamer.apply(plan, git_repo)
    assert repo.snapshot() == before


def test_an_existing_target_name_is_refused(repo: MigRepo) -> None:
    busy_conflict(repo)
    git_repo, plan = make_plan(repo)
    (repo.root / "tests" / "test_0004_update.py").write_text("# someone else's\n")
    before = repo.snapshot()

    with pytest.raises(RenumberError, match=r"test_0004_update\.py already exists"):
        renamer.apply(plan, git_repo)
    assert repo.snapshot() == before


def test_number_of() -> None:
    assert renumber.number_of("0042_add_foo") == (42, 4)
    assert renumber.number_of("10000_x") == (10000, 5)
    assert renumber.number_of("initial") is None
