"""prune_squashed start to end, without printing: each message goes to ``report`` as a
:class:`~migtools.renamer.workflow.Message`; errors are raised from the migtools error tree.

Order of a run: complete (or undo) a run a kill interrupted (the renamer's journal: the same
machinery, the same place under ``$GIT_DIR``); read the tree and every given database; refuse,
changing nothing, when a database has part of a squash applied; plan and show it; on
``--dry-run`` show the diff and stop. Otherwise refuse files holding uncommitted edits, record
the squash as applied where its replaced migrations all are (so the database shows nothing to
migrate afterwards), write the files and the index journaled and all or nothing, check the
result and say which steps are next (Django's ``migrate APP --prune`` drops the rows of the
deleted migrations)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connections

from migtools import dberrors, project
from migtools.errors import (
    DatabaseUnavailableError,
    SquashError,
    UsageError,
)
from migtools.gitrepo import GitRepo
from migtools.renamer import apply
from migtools.renamer import journal as jn
from migtools.renamer.inputs import gather
from migtools.renamer.workflow import DIFF, HEADING, NOTICE, SUCCESS, WARNING, Message, Report
from migtools.squash import prune
from migtools.squash.compare import fmt

Key = tuple[str, str]


@dataclass(frozen=True)
class Options:
    app_labels: list[str] = field(default_factory=list)
    dry_run: bool = False
    databases: list[str] = field(default_factory=lambda: ["default"])


def _recorded(alias: str) -> set[Key]:
    from django.db import DatabaseError
    from django.db.migrations.recorder import MigrationRecorder

    wrapper = connections[alias]
    if wrapper.settings_dict.get("ENGINE") in (None, "", "django.db.backends.dummy"):
        raise SquashError(
            f"Database '{alias}' is not configured: prune_squashed must see where the squashes "
            "are deployed. Point --database at each database that runs this code. Nothing was "
            "changed."
        )
    try:
        recorder = MigrationRecorder(wrapper)
        if not recorder.has_table():
            return set()
        return {(str(a), str(n)) for a, n in recorder.applied_migrations()}
    except DatabaseError as exc:
        text = dberrors.unreachable(alias, exc)
        raise DatabaseUnavailableError(
            f"{text[0].upper()}{text[1:]}: prune_squashed must see where the squashes are "
            "deployed. Nothing was changed."
        ) from None


def run(options: Options, report: Report) -> None:
    for alias in options.databases:
        if alias not in connections.databases:
            raise dberrors.unknown_alias(alias)
    labels = [project.app_config(label).label for label in options.app_labels] or None
    repo = GitRepo.find(project.lockfile_path())

    if options.dry_run:
        if jn.read(repo.state_dir) is not None:
            report(
                Message(
                    "An interrupted run is pending: run prune_squashed without --dry-run to "
                    "complete it first. Nothing was changed.",
                    WARNING,
                )
            )
            return
    else:
        recovered = apply.recover(repo)
        if recovered is not None:
            report(Message(recovered.message, NOTICE))

    inputs = gather(repo, main="HEAD")  # which branch is main does not matter here
    for label in labels or []:
        if label not in inputs.apps:
            raise UsageError(
                f"App '{label}' is not managed by migtools (MIGTOOLS_APPS lists the managed apps)."
            )
    squashes = prune.find_squashes(inputs, labels)
    if not squashes:
        report(Message("No squashed migrations (migrations with `replaces`) to prune."))
        if not options.dry_run:
            _next_step(repo, report)
        return
    states = {
        alias: prune.database_state(alias, _recorded(alias), squashes)
        for alias in options.databases
    }
    prune.refuse_half_applied(list(states.values()))
    pruning = prune.plan(inputs, squashes)
    for line in prune.describe(pruning, states):
        report(Message(line, HEADING if line.startswith("Pruning") else "plain"))
    if pruning.moved_tests:
        report(Message("Migration tests moved to the squash (the same state):", HEADING))
        for line in pruning.moved_tests:
            report(Message(f"  {line}"))
    if pruning.for_a_human:
        report(Message("Migration tests left for you (no equivalent after pruning):", WARNING))
        for line in pruning.for_a_human:
            report(Message(f"  {line}", WARNING))

    plan = pruning.plan
    if options.dry_run:
        diff = plan.diff()
        if diff:
            report(Message(diff, DIFF))
        report(Message("Dry run: nothing was changed.", NOTICE))
        return

    staged = [c.source for c in plan.changes if c.stage]
    dirty = repo.modified(repo.tracked(staged))
    if dirty:
        listing = "\n".join(f"  {plan.relative(p)}" for p in sorted(dirty))
        raise SquashError(
            "These files have uncommitted changes of your own, and prune_squashed must rewrite "
            f"or delete them:\n{listing}\nCommit or stash those changes first. Nothing was "
            "changed."
        )
    apply.check(plan, repo, allow_dirty=True)
    for state in states.values():
        _record(state)
    journal = apply.prepare(plan, repo)
    journal.renames = [f"prune_squashed {fmt(s.key)}" for s in squashes]
    apply.write(plan, repo, journal)

    problems = [p for p in prune.verify(plan)]
    if problems:
        raise SquashError(
            "The squashes were pruned, but the result does not check out:\n"
            + "\n".join(f"  {p}" for p in problems)
        )
    report(
        Message(
            "Done: the squashes are normal migrations now; every reference, test and the "
            "lockfile follow.",
            SUCCESS,
        )
    )
    apps = sorted({s.key[0] for s in squashes})
    for alias in options.databases:
        flag = "" if alias == "default" else f" --database {alias}"
        for label in apps:
            report(
                Message(
                    f"Then: python manage.py migrate {label} --prune{flag}  (drops the "
                    "django_migrations rows of the deleted migrations)"
                )
            )
    _next_step(repo, report)


def _record(state: prune.DatabaseState) -> None:
    """Record each deployed squash whose row is missing (Django records it itself on the next
    ``migrate``; without its replaced files it would try to apply it instead)."""
    if not state.record:
        return
    from django.db.migrations.recorder import MigrationRecorder

    recorder = MigrationRecorder(connections[state.alias])
    for app_label, name in state.record:
        recorder.record_applied(app_label, name)


def _next_step(repo: GitRepo, report: Report) -> None:
    next_step = repo.next_step()
    report(
        Message(
            f"Next: {next_step}"
            if next_step
            else "Next: review the staged changes and commit them."
        )
    )
