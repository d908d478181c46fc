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
from typing import TYPE_CHECKING

from migtools import project
from migtools.errors import AppliedMigrationsError, RenumberError, UsageError
from migtools.gitrepo import GitRepo
from migtools.renamer import applied as db
from migtools.renamer import apply, renamemap
from migtools.renamer import journal as jn
from migtools.renamer import plan as planning
from migtools.renamer.inputs import Inputs, Source, django_source, gather, scope

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

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
    database_given: bool = False  # False: every alias is looked at (rolled back: ``database``)


def run(options: Options, report: Report) -> None:
    """Resolve the conflicts (or the one named migration) as ``options`` say (``manage.py``:
    the project as Django's settings describe it, the database looked at)."""
    connection = db.connection_for(options.database)  # an unknown alias: exit 2, always
    if options.app_label is not None:
        project.app_config(options.app_label)
    source = django_source()
    resolve(GitRepo.find(source.lockfile_path), source, options, report, connection)


def resolve(
    repo: GitRepo,
    source: Source,
    options: Options,
    report: Report,
    connection: BaseDatabaseWrapper | None = None,
) -> None:
    """What :func:`run` does, for the project ``source`` describes; with no ``connection``
    (the settings-free CLI) no database is looked at and ``--update-applied`` is refused."""
    if options.update_applied and connection is None:
        raise UsageError("--update-applied needs the database: run manage.py update_migration.")
    if options.app_label is not None:
        source.label_of(options.app_label)
    recovered = None
    if options.dry_run:
        if jn.read(repo.state_dir, scope(repo, source)) is not None:
            report(
                Message(
                    "An interrupted update_migration run is pending: run update_migration "
                    "without --dry-run to complete it first. Nothing was changed.",
                    WARNING,
                )
            )
            return
    else:
        recovered = apply.recover(repo, scope(repo, source))
        if recovered is not None:
            report(Message(recovered.message, NOTICE))
        renamemap.drop_stale(repo)

    inputs = gather(repo, source=source)
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
        if not options.dry_run:
            renamemap.drop_finished(repo)
        if recovered is not None and not recovered.gone:
            _next_step(repo, report)
        return
    for message in describe(plan, inputs):
        report(message)

    steps: list[db.Step] = []
    applied: list[planning.Key] = []
    if connection is None:
        report(
            Message(
                "Not checked whether the moved migrations are applied in a database (this "
                "command reads no settings): if they are, roll them back first, or run "
                "'python manage.py update_migration --update-applied'.",
                NOTICE,
            )
        )
    else:
        steps, applied = _look_at_databases(plan, options, report, connection)

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
        # named as they are after the run (a renamed migration by its new name)
        after = {c.source: c.path for c in plan.changes if c.new_text is not None}
        listing = ", ".join(sorted(plan.relative(after.get(p, p)) for p in dirty))
        report(Message(f"Leaving your own uncommitted edits unstaged in: {listing}", WARNING))
    unapply = db.names(steps)
    journal = apply.prepare(
        plan, repo, dirty=dirty, database=options.database if steps else None, unapply=unapply
    )
    apply.begin(repo, journal)
    if steps and connection is not None:
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
                f"No file was changed. {_database_state(applied, connection)}"
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
    renamemap.drop_finished(repo)
    report(
        Message(
            "Done: every managed app has one leaf migration and the lockfile is up to date.",
            SUCCESS,
        )
    )
    if steps:
        report(Message("Run 'python manage.py migrate' to apply them in the new order."))
    _later_commits(repo, report)
    _next_step(repo, report)


def _later_commits(repo: GitRepo, report: Report) -> None:
    """At a rebase stop: say when commits still to be replayed name a renamed migration (git
    may replay them without stopping; the run after the rebase fixes them)."""
    renames = renamemap.read(repo)
    if not renames or repo.rebase_key() is None:
        return
    remaining = repo.rebase_remaining()
    if not remaining:
        return
    added = "\n".join(line for line in remaining.splitlines() if line.startswith("+"))
    named = sorted(
        f"{label}.{old}"
        for label, names in renames.items()
        for old in names
        if f'"{old}"' in added or f"'{old}'" in added
    )
    if named:
        report(
            Message(
                f"Later commits of this rebase still name {', '.join(named)}: if the rebase "
                "does not stop again, run update_migration once more after it finishes.",
                NOTICE,
            )
        )


def _look_at_databases(
    plan: planning.Plan, options: Options, report: Report, connection: BaseDatabaseWrapper
) -> tuple[list[db.Step], list[planning.Key]]:
    """Look once at what is applied: the rollback steps under --update-applied (or, on a dry
    run, what it would roll back), and the moved migrations applied on ``connection``."""
    found = db.applied_moved(plan.moved, connection)
    # Without --database every alias is looked at, once: a migration applied on any of them
    # cannot be renamed without --update-applied (which rolls back on one alias: --database).
    others = [
        db.applied_moved(plan.moved, db.connection_for(alias))
        for alias in ([] if options.database_given else db.aliases())
        if alias != options.database
    ]
    if found.unavailable is not None and options.update_applied:
        db.require(found)
    looked = [found, *others]
    unconfigured = [f for f in looked if f.unavailable is not None and not f.configured]
    unreachable = [f for f in looked if f.unavailable is not None and f.configured]
    if unconfigured and len(unconfigured) == len(looked):
        report(
            Message(
                "No database is configured (DATABASES is empty): not checked whether the "
                "moved migrations are applied anywhere.",
                NOTICE,
            )
        )
    elif unreachable:
        said = "; ".join(str(f.unavailable) for f in sorted(unreachable, key=lambda f: f.alias))
        report(
            Message(
                f"{said[:1].upper()}{said[1:]}. Not checked whether the moved migrations are "
                "applied there. If they are, roll them back (migrate APP <migration before "
                "them>) before you migrate again.",
                WARNING,
            )
        )
    elsewhere = [f for f in others if f.applied]
    if elsewhere and not options.dry_run:
        raise db.refuse(elsewhere[0].applied, elsewhere[0].alias)
    for other in elsewhere:
        report(Message(f"--update-applied would refuse: {db.refuse(other.applied, other.alias)}"))
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

    return steps, found.applied


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
