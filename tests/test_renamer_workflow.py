"""update_migration's workflow at its edges: a dirty tree, the rebase rename map's lifetime,
--update-applied when a write fails after the rollback, and the messages of issue 10 item 11."""

from __future__ import annotations

import pytest

from migtools.gitrepo import GitRepo
from migtools.renamer import apply as renamer
from migtools.renamer import plan as renumber
from migtools.renamer import renamemap
from migtools.renamer.inputs import gather
from tests.test_renumber import Boom, busy_conflict
from tests.test_update_migration import (
    MigRepo,
    _applied,
    _apply,
    _conflicted,
    base_history,
    diverge,
    repo,
    run_command,
)

__all__ = ["repo"]  # the fixture
pytestmark = pytest.mark.django_db(databases="__all__")


# --------------------------------------------------------------------------- a dirty tree


def test_a_dirty_file_to_rewrite_is_refused_naming_it(repo: MigRepo) -> None:
    _conflicted(repo)
    path = repo.path("alpha", "0003_feature")
    path.write_text(path.read_text() + "# my own note\n")
    before = repo.snapshot()

    out, err, code = repo.run()

    assert code == 1
    assert err == (
        "These files have uncommitted changes of your own, and update_migration must rewrite "
        f"them:\n  {repo.package}/alpha/0003_feature.py\nCommit or stash those changes first, "
        "or run again with --allow-dirty (your own edits then stay in the working tree, "
        "unstaged). Nothing was changed."
    )
    assert "0003_feature -> 0004_feature" in out  # the plan was shown
    assert repo.snapshot() == before


def test_allow_dirty_leaves_the_users_edit_unstaged(repo: MigRepo) -> None:
    _conflicted(repo)
    path = repo.path("alpha", "0003_feature")
    path.write_text(path.read_text() + "# my own note\n")

    out, err, code = repo.run("--allow-dirty")

    assert code == 0, err
    # named as it is after the run: renamed
    assert (
        f"Leaving your own uncommitted edits unstaged in: {repo.package}/alpha/0004_feature.py"
        in err
    )
    new = f"{repo.package}/alpha/0004_feature.py"
    assert "# my own note\n" in (repo.root / new).read_text()
    staged = repo.git("show", f":{new}").stdout
    assert "# my own note" not in staged
    assert '("alpha", "0003_mainline")' in staged
    unstaged = repo.git("diff", "--", new).stdout
    assert [
        line
        for line in unstaged.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ] == ["+# my own note"]
    assert repo.git("ls-files", "-u").stdout == ""
    repo.check_resolved()
    assert out.endswith("Next: git merge --continue\n")


# --------------------------------------------------------------------------- the rename map


def test_the_rename_map_belongs_to_its_rebase(repo: MigRepo) -> None:
    base_history(repo)
    repo.git("checkout", "-q", "-b", "feature")
    repo.add("alpha", "0003_first", [("alpha", "0002_step2")])
    repo.write_lockfile()
    repo.commit("first")
    repo.git("checkout", "-q", "main")
    repo.add("alpha", "0003_mainline", [("alpha", "0002_step2")])
    repo.write_lockfile()
    repo.commit("main")
    repo.git("checkout", "-q", "feature")
    assert repo.git("rebase", "main", check=False).returncode != 0
    _out, err, code = repo.run()
    assert (err, code) == ("", 0)
    git_repo = GitRepo.find(repo.lockfile)
    map_file = renamemap.path(git_repo)
    key = git_repo.rebase_key()
    assert key is not None
    assert renamemap.read(git_repo) == {"alpha": {"0003_first": "0004_first"}}
    assert f'"onto": "{key[0]}"' in map_file.read_text()

    repo.git("rebase", "--continue")
    # the rebase has ended, but ORIG_HEAD is still its orig-head: a commit it replayed without
    # a stop may still name an old name, so the map holds until the next run
    assert renamemap.read(git_repo) == {"alpha": {"0003_first": "0004_first"}}
    assert renamemap.stale(git_repo) == []
    out, err, code = repo.run("--dry-run")
    assert (out, err, code) == ("No migration conflicts to resolve.\n", "", 0)
    assert map_file.exists()  # a dry run changes nothing, not even that

    out, err, code = repo.run()
    assert (out, err, code) == ("No migration conflicts to resolve.\n", "", 0)
    assert not map_file.exists()


def test_a_finished_rebases_map_is_stale_once_orig_head_moves(repo: MigRepo) -> None:
    base_history(repo)
    repo.git("checkout", "-q", "-b", "feature")
    repo.add("alpha", "0003_first", [("alpha", "0002_step2")])
    repo.write_lockfile()
    repo.commit("first")
    repo.git("checkout", "-q", "main")
    repo.add("alpha", "0003_mainline", [("alpha", "0002_step2")])
    repo.write_lockfile()
    repo.commit("main")
    repo.git("checkout", "-q", "feature")
    assert repo.git("rebase", "main", check=False).returncode != 0
    assert repo.run()[2] == 0
    repo.git("rebase", "--continue")
    git_repo = GitRepo.find(repo.lockfile)
    repo.git("reset", "-q", "--hard", "HEAD~1")  # another operation: ORIG_HEAD moves

    assert renamemap.read(git_repo) == {}
    assert renamemap.stale(git_repo) == [renamemap.path(git_repo)]


# --------------------------------------------------------------------------- --update-applied


def test_a_write_failing_after_the_rollback_says_the_database_is_rolled_back(
    repo: MigRepo,
) -> None:
    base_history(repo)
    diverge(repo)
    repo.git("checkout", "-q", "feature")
    _apply("alpha")
    repo.git("merge", "main", check=False)
    before = repo.snapshot()
    lock = repo.root / ".git" / "index.lock"
    lock.write_text("")  # another git process holds the index: the index update fails

    out, err, code = repo.run("--update-applied")
    lock.unlink()

    assert code == 1
    assert "  Unapplying alpha.0003_feature\n" in out
    assert err.startswith("Writing the changes failed (GitRepoError: git update-index")
    assert "index.lock" in err
    assert err.endswith(
        "every file was restored. But the database was rolled back first: alpha.0003_feature "
        "are no longer applied there. Run 'python manage.py migrate' to apply them again under "
        "their old names, or fix the problem and run update_migration again (there is nothing "
        "left to roll back)."
    )
    assert repo.snapshot() == before
    assert _applied("alpha") == ["0001_step1", "0002_step2"]  # what the message says

    out, err, code = repo.run()  # as the message says: nothing left to roll back
    assert (err, code) == ("", 0)
    repo.check_resolved()


def test_dry_run_on_applied_migrations_shows_plan_diff_and_the_rollback(repo: MigRepo) -> None:
    base_history(repo)
    diverge(repo)
    repo.git("checkout", "-q", "feature")
    _apply("alpha")
    repo.git("merge", "main", check=False)
    before = repo.snapshot()

    out, err, code = repo.run("--dry-run")

    assert code == 0
    assert "  0003_feature -> 0004_feature\n" in out
    assert '+        ("alpha", "0003_mainline"),\n' in out
    assert "  Would unapply alpha.0003_feature\n" in out
    assert out.endswith("Dry run: nothing was changed.\n")
    assert "without --update-applied the real run refuses; with it, it first rolls back:" in err
    assert repo.snapshot() == before
    assert _applied("alpha") == ["0001_step1", "0002_step2", "0003_feature"]


# --------------------------------------------------------------------------- messages


def test_a_computed_dependency_is_named_by_file_and_line(repo: MigRepo) -> None:
    base_history(repo)
    repo.git("checkout", "-q", "-b", "feature")
    repo.add("alpha", "0003_feature", [("alpha", "0002_step2")])
    path = repo.add("beta", "0001_initial", [("alpha", "0003_feature")])
    path.write_text(
        path.read_text().replace('("alpha", "0003_feature")', '("alpha", "0003_" + "feature")')
    )
    repo.write_lockfile()
    repo.commit("feature")
    repo.git("checkout", "-q", "main")
    repo.add("alpha", "0003_mainline", [("alpha", "0002_step2")])
    repo.write_lockfile()
    repo.commit("main")
    repo.git("checkout", "-q", "feature")
    repo.git("merge", "main", check=False)
    before = repo.snapshot()
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "+" in text)

    _out, err, code = repo.run()

    assert code == 1
    assert err.startswith(
        f"{repo.package}/beta/0001_initial.py:{line}: beta.0001_initial names "
        "alpha.0003_feature, but this line is computed ("
    )
    assert err.endswith(
        "so update_migration cannot rewrite it. Make it a literal ('app_label', "
        "'migration_name') pair, then run update_migration again. Nothing was changed."
    )
    assert repo.snapshot() == before


def test_an_ambiguous_name_within_the_given_app_asks_for_the_full_name(repo: MigRepo) -> None:
    _conflicted(repo)

    out, err, code = repo.run("step", "alpha")

    assert (out, code) == ("", 1)
    assert err == (
        "'step' matches several migrations in app 'alpha'; give the full name:\n"
        "  alpha.0001_step1\n  alpha.0002_step2"
    )


def test_the_next_step_names_another_conflicted_file(repo: MigRepo) -> None:
    (repo.root / "notes.txt").write_text("base\n")
    base_history(repo)
    repo.git("checkout", "-q", "-b", "feature")
    repo.add("alpha", "0003_feature", [("alpha", "0002_step2")])
    (repo.root / "notes.txt").write_text("feature\n")
    repo.write_lockfile()
    repo.commit("feature")
    repo.git("checkout", "-q", "main")
    repo.add("alpha", "0003_mainline", [("alpha", "0002_step2")])
    (repo.root / "notes.txt").write_text("main\n")
    repo.write_lockfile()
    repo.commit("main")
    repo.git("checkout", "-q", "feature")
    assert repo.git("rebase", "main", check=False).returncode != 0

    out, err, code = repo.run()

    assert (err, code) == ("", 0)
    assert out.endswith(
        "Next: resolve the conflicts in notes.txt and 'git add' them, then git rebase --continue\n"
    )
    repo.check_resolved()


def test_an_unknown_database_alias_exits_2_even_with_nothing_to_resolve(repo: MigRepo) -> None:
    base_history(repo)

    out, err, code = repo.run("--database", "nosuch")

    assert (out, code) == ("", 2)
    assert err.startswith("Unknown database alias 'nosuch' (DATABASES defines: ")


def test_since_a_ref_that_does_not_exist_exits_2_with_gits_reason() -> None:
    out, err, code = run_command("verify_migrations", "--since", "no-such-ref-here")

    assert (out, code) == ("", 2)
    assert err.startswith("Git ref 'no-such-ref-here' does not exist in ")
    assert err.endswith(": fatal: bad revision 'no-such-ref-here'")


# --------------------------------------------------------------------------- restoring


def test_a_failing_restore_carries_on_and_the_next_run_finishes_the_undo(repo: MigRepo) -> None:
    busy_conflict(repo)
    before = repo.snapshot()
    git_repo = GitRepo.find(repo.lockfile)
    plan = renumber.plan(gather(git_repo))
    blocker = repo.path("alpha", "0005_update")

    def sabotage(description: str) -> None:
        if description.startswith("delete"):
            blocker.unlink()
            blocker.mkdir()  # restoring "absent" now meets a non-empty directory
            (blocker / "keep").write_text("")
            raise Boom("injected")

    with pytest.raises(renumber.RenumberError) as info:
        renamer.apply(plan, git_repo, before_step=sabotage)
    message = str(info.value)
    assert message.startswith(
        "Writing the changes failed (Boom: injected), and restoring "
        f"failed too for:\n  {repo.package}/alpha/0005_update.py: "
    )
    assert message.endswith(
        "The journal is kept: the next update_migration run finishes restoring them."
    )
    # every other file and the index were restored all the same
    assert (
        repo.path("alpha", "0003_update").read_text()
        == before[f"{repo.package}/alpha/0003_update.py"].decode()
    )
    assert repo.git("ls-files", "--stage").stdout.encode() == before[".git/index"]

    (blocker / "keep").unlink()
    blocker.rmdir()
    out, err, code = repo.run()

    assert (err, code) == ("", 0)
    assert out.startswith(
        "update_migration was interrupted earlier (alpha.0003_update -> "
        "0004_update, alpha.0004_update -> 0005_update): undid it"
    )
    repo.check_resolved()
    assert out.endswith("Next: git merge --continue\n")


def test_a_pending_journal_with_foreign_edits_is_refused(repo: MigRepo) -> None:
    busy_conflict(repo)
    git_repo = GitRepo.find(repo.lockfile)
    plan = renumber.plan(gather(git_repo))
    journal = renamer.prepare(plan, git_repo)
    renamer.begin(git_repo, journal)  # as if killed right after writing the journal
    target = repo.path("beta", "0001_initial")
    target.write_text("# someone rewrote this meanwhile\n")

    _out, err, code = repo.run()

    assert code == 1
    assert err.startswith(
        "update_migration was interrupted earlier (alpha.0003_update -> "
        "0004_update, alpha.0004_update -> 0005_update), and these files "
        f"changed since:\n  {repo.package}/beta/0001_initial.py\n"
    )
    assert target.read_text() == "# someone rewrote this meanwhile\n"


def test_git_can_still_abort_the_merge_afterwards(repo: MigRepo) -> None:
    """Index entries set from blobs are refreshed: git does not take them for modified files."""
    _conflicted(repo)
    _out, err, code = repo.run()
    assert (err, code) == ("", 0)

    assert repo.git("status", "--porcelain").stdout.count("??") == 0
    repo.git("merge", "--abort")
    assert repo.names("alpha") == ["0001_step1", "0002_step2", "0003_feature"]
