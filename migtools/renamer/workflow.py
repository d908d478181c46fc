"""What ``update_migration`` does, start to end, without printing: each message goes to the
caller's ``report`` as a :class:`Message` (text and a kind), errors are raised from the
migtools error tree.

Order of a run: complete (or undo) a run a kill interrupted; drop a stale rename map; read the
inputs and plan; show the plan; ask the database which moved migrations are applied (a missing
or unreachable database is one line, fatal only under ``--update-applied``); on ``--dry-run``
show the diff and what ``--update-applied`` would roll back, and stop. Otherwise check the tree,
write the journal, roll the database back (recorded in the journal), write the files and the
index, check the result and say which git step is next.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from migtools import project
from migtools.errors import AppliedMigrationsError, RenumberError
from migtools.gitrepo import GitRepo
from migtools.renamer import applied as db
from migtools.renamer import apply, renamemap
from migtools.renamer import journal as jn
from migtools.renamer import plan as planning
from migtools.renamer.inputs import Inputs, gather

# Message kinds (the command styles them)
PLAIN = "plain"
HEADING = "heading"
NOTICE = "notice"
WARNING = "warning"
SUCCESS = "success"
DIFF = "diff"


@dataclass(frozen=True)
class Message:
    text: str
    kind: str = PLAIN


Report = Callable[[Message], None]


@dataclass(frozen=True)
class Options:
    migration: str | None = None
    app_label: str | None = None
    dry_run: bool = False
    update_applied: bool = False
    allow_dirty: bool = False
    database: str = "default"


def run(options: Options, report: Report) -> None:
    """Resolve the conflicts (or the one named migration) as ``options`` say."""
    connection = db.connection_for(options.database)  # an unknown alias: exit 2, always
    if options.app_label is not None:
        project.app_config(options.app_label)
    repo = GitRepo.find(project.lockfile_path())

    recovered = None
    if options.dry_run:
        if jn.read(repo.state_dir) is not None:
            report(
                Message(
                    "An interrupted update_migration run is pending: run update_migration "
                    "without --dry-run to complete it first. Nothing was changed.",
                    WARNING,
                )
            )
            return
    else:
        recovered = apply.recover(repo)
        if recovered is not None:
            report(Message(recovered.message, NOTICE))
        renamemap.drop_stale(repo)

    inputs = gather(repo)
    plan = planning.plan(inputs, options.migration, options.app_label)
    if plan.empty:
        if options.migration is not None:
            report(
                Message(
                    f"'{options.migration}' already comes after the latest migration on "
                    f"{inputs.main}: nothing to do."
                )
            )
        else:
            report(Message("No migration conflicts to resolve."))
        if recovered is not None:
            _next_step(repo, report)
        return
    for message in describe(plan, inputs):
        report(message)

    found = db.applied_moved(plan.moved, connection)
    if found.unavailable is not None:
        if options.update_applied:
            db.require(found)
        if not found.configured:
            report(
                Message(
                    "No database is configured (DATABASES is empty): not checked whether the "
                    "moved migrations are applied anywhere.",
                    NOTICE,
                )
            )
        else:
            report(
                Message(
                    f"{found.unavailable[:1].upper()}{found.unavailable[1:]}. Not checked "
                    "whether the moved migrations are applied there. If they are, roll them back "
                    "(migrate APP <migration before them>) before you migrate again.",
                    WARNING,
                )
            )
    steps: list[db.Step] = []
    if found.applied:
        if options.dry_run:
            try:
                steps = db.rollback_plan(found.applied, connection)
            except AppliedMigrationsError as exc:
                report(Message(f"--update-applied would refuse: {exc}", WARNING))
        elif not options.update_applied:
            raise db.refuse(found.applied)
        else:
            steps = db.rollback_plan(found.applied, connection)

    if options.dry_run:
        if steps and not options.update_applied:
            report(
                Message(
                    "These migrations are applied in the database: without --update-applied "
                    "the real run refuses; with it, it first rolls back:",
                    WARNING,
                )
            )
        for name in db.names(steps):
            report(Message(f"  Would unapply {name}"))
        diff = plan.diff()
        if diff:
            report(Message(diff, DIFF))
        report(Message("Dry run: nothing was changed.", NOTICE))
        return

    dirty = apply.check(plan, repo, allow_dirty=options.allow_dirty)
    if dirty:
        listing = ", ".join(plan.relative(p) for p in sorted(dirty))
        report(Message(f"Leaving your own uncommitted edits unstaged in: {listing}", WARNING))
    unapply = db.names(steps)
    journal = apply.prepare(
        plan, repo, dirty=dirty, database=options.database if steps else None, unapply=unapply
    )
    apply.begin(repo, journal)
    if steps:
        report(Message("Rolling back applied migrations:", HEADING))
        for name in unapply:
            report(Message(f"  Unapplying {name}"))
        try:
            db.roll_back(steps, connection)
        except BaseException as exc:
            apply.undo(repo, journal)
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            raise RenumberError(
                f"Rolling back the applied migrations failed ({type(exc).__name__}: {exc}). "
                f"No file was changed. {_database_state(found.applied, connection)}"
            ) from exc
        apply.record(repo, jn.DATABASE_ROLLED_BACK)
    try:
        apply.complete(repo, journal)
    except BaseException as exc:
        problems = apply.undo(repo, journal)
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        note = ""
        if steps:
            note = (
                f"But the database was rolled back first: {', '.join(unapply)} are no longer "
                "applied there. Run 'python manage.py migrate' to apply them again under their "
                "old names, or fix the problem and run update_migration again (there is "
                "nothing left to roll back)."
            )
        error = apply.write_failed(exc, problems, note)
        raise error from exc

    problems = planning.verify(plan)
    if problems:
        raise RenumberError(
            "The renames were written, but the result does not check out:\n"
            + "\n".join(f"  {p}" for p in problems)
        )
    report(
        Message(
            "Done: every managed app has one leaf migration and the lockfile is up to date.",
            SUCCESS,
        )
    )
    if steps:
        report(Message("Run 'python manage.py migrate' to apply them in the new order."))
    _next_step(repo, report)


def _database_state(keys: list[planning.Key], connection: object) -> str:
    still = db.still_applied(keys, connection)  # type: ignore[arg-type]
    if still is None:
        return "The database cannot say which are still applied: check 'showmigrations'."
    gone = [planning.fmt(k) for k in keys if k not in still]
    parts = []
    if still:
        parts.append(f"still applied: {', '.join(planning.fmt(k) for k in still)}")
    if gone:
        parts.append(f"no longer applied: {', '.join(gone)}")
    return "In the database, " + "; ".join(parts) + "."


def _next_step(repo: GitRepo, report: Report) -> None:
    next_step = repo.next_step()
    conflicted = repo.unmerged_paths()
    if conflicted:
        names = ", ".join(conflicted)
        then = f", then {next_step}" if next_step else ""
        report(Message(f"Next: resolve the conflicts in {names} and 'git add' them{then}"))
    elif next_step is not None:
        report(Message(f"Next: {next_step}"))
    else:
        report(Message("Next: review the staged changes and commit them."))


def describe(plan: planning.Plan, inputs: Inputs) -> list[Message]:
    """The plan in words: what moves where, which files are rewritten or renamed."""
    out: list[Message] = [Message(f"Fixed a reference in {fix}") for fix in plan.map_fixes]
    for app in plan.apps:
        out.append(
            Message(
                f"Moving {app.app_label}'s migrations after {app.main_leaf} "
                f"(the latest on {inputs.main}):",
                HEADING,
            )
        )
        new_names = dict(zip(app.chain, app.new_names, strict=True))
        for index, (old, new) in enumerate(new_names.items()):
            note = ""
            if old in app.linearised:
                note = f" (now after {new_names[app.linearised[old]]} instead of beside it)"
            elif index == 0 and old == new:
                note = f" (name kept, now after {app.main_leaf})"
            shown = old if old == new else f"{old} -> {new}"
            out.append(Message(f"  {shown}{note}"))
    moved = {r.old_path for r in plan.renames}
    edited = [
        c
        for c in plan.changes
        if c.path != plan.lockfile_path
        and c.stage
        and c.old_text != c.new_text
        and c.source not in moved
    ]
    if edited:
        out.append(Message("Rewriting references in:", HEADING))
        out += [Message(f"  {plan.relative(c.path)}") for c in edited]
    for change in plan.changes:
        if change.moved and not any(r.old_path == change.source for r in plan.renames):
            out.append(
                Message(f"Renaming {plan.relative(change.source)} -> {plan.relative(change.path)}")
            )
    if any(c.path == plan.lockfile_path for c in plan.changes):
        out.append(Message(f"Updating {plan.relative(plan.lockfile_path)}"))
    return out
