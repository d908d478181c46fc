"""Writing a plan, journaled, all or nothing.

:func:`check` refuses before anything is written (a file changed since planning, a target name
taken, uncommitted edits in a file to rewrite). :func:`prepare` turns the plan into a
:class:`~migtools.renamer.journal.Journal`: every touched file's old and new content and the
index entries to set (blobs written with ``git hash-object -w``). :func:`begin` writes it;
:func:`complete` then sets each file and the index (one ``git update-index --index-info``, so
git holds its lock) to the journal's "new" state, recording each step. An exception undoes
everything (:func:`undo`, which carries on past its own errors); a killed process leaves the
journal, and :func:`recover` at the start of the next run completes it, or finishes its undo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from migtools import source as pysource
from migtools.errors import JournalError, RenumberError, RenumberWriteError
from migtools.gitrepo import GitRepo, IndexEntry
from migtools.renamer import journal as jn
from migtools.renamer.plan import Plan, fmt

Step = Callable[[str], None]


def _event(description: str, before_step: Step | None) -> None:
    """Every write and git event of a run passes here first (the crash-safety tests kill the
    process at each one)."""
    if before_step is not None:
        before_step(description)


def _read(path: Path) -> str | None:
    try:
        return pysource.read(path)
    except FileNotFoundError:
        return None
    except (SyntaxError, IsADirectoryError):
        return "\0not text\0"


# --------------------------------------------------------------------------- before writing


def check(plan: Plan, repo: GitRepo | None, *, allow_dirty: bool = False) -> set[Path]:
    """Refuse (nothing written) when the tree is not what the plan was made from; returns the
    files holding the user's own uncommitted edits (allowed with ``allow_dirty``)."""
    sources = {c.source for c in plan.changes}
    for change in plan.changes:
        if _read(change.source) != change.old_text:
            raise RenumberError(
                f"{change.source} changed while update_migration ran; nothing "
                "was changed. Run it again."
            )
        if change.moved and change.path.exists() and change.path not in sources:
            raise RenumberError(
                f"Cannot rename {change.source.name} to {change.path.name}: "
                f"{change.path} already exists. Nothing was changed."
            )
    if repo is None:
        return set()
    staged = [c.source for c in plan.changes if c.stage]
    dirty = repo.modified(repo.tracked(staged))
    if dirty and not allow_dirty:
        listing = "\n".join(f"  {plan.relative(p)}" for p in sorted(dirty))
        raise RenumberError(
            "These files have uncommitted changes of your own, and update_migration must "
            f"rewrite them:\n{listing}\nCommit or stash those changes first, or run again with "
            "--allow-dirty (your own edits then stay in the working tree, unstaged). Nothing "
            "was changed."
        )
    return dirty


def prepare(
    plan: Plan,
    repo: GitRepo | None,
    *,
    dirty: set[Path] | None = None,
    database: str | None = None,
    unapply: list[str] | None = None,
) -> jn.Journal:
    """The journal of ``plan``: the state of every file and index entry before and after."""
    old: dict[Path, str | None] = {}
    new: dict[Path, str | None] = {}
    mode: dict[Path, int] = {}
    for change in plan.changes:
        old.setdefault(change.source, change.old_text)
        old.setdefault(change.path, _read(change.path))
        try:
            mode[change.path] = change.source.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode[change.path] = 0o644
    dests = {c.path for c in plan.changes}
    for change in plan.changes:
        new[change.path] = change.new_text
        if change.moved and change.source not in dests:
            new[change.source] = None
    files = [
        _state(repo, path, old[path], new[path], mode.get(path, 0o644))
        # new content first, deletions last: a migration is never missing half-way
        for path in sorted(old, key=lambda p: (new.get(p, old[p]) is None, str(p)))
        if old[path] != new.get(path, old[path])
    ]

    index_paths: list[str] = []
    index_old: list[IndexEntry] = []
    index_new: list[IndexEntry] = []
    if repo is not None:
        stageable = [c for c in plan.changes if c.stage]
        tracked = repo.tracked([c.source for c in stageable])
        if plan.stage_lockfile:
            tracked.add(plan.lockfile_path)
        staged = [c for c in stageable if c.source in tracked]
        touched = {c.source for c in staged} | {c.path for c in staged}
        index_old = repo.index_entries(touched)
        index_paths = sorted({repo.relative(p) for p in touched})
        by_path = {e.path: e for e in index_old if e.stage in (0, 2)}
        for change in staged:
            if change.new_text is None:
                continue
            rel_source = repo.relative(change.source)
            entry = by_path.get(rel_source)
            text = change.new_text
            if dirty and change.source in dirty and entry is not None and entry.stage == 0:
                text = change.new_version_of(repo.blob_text(entry.sha)) or change.new_text
            sha = repo.store_blob(pysource.encode(text, like=change.source))
            file_mode = entry.mode if entry is not None else "100644"
            index_new.append(IndexEntry(file_mode, sha, 0, repo.relative(change.path)))
    return jn.Journal(
        files=files,
        index_paths=index_paths,
        index_old=index_old,
        index_new=index_new,
        renames=[f"{fmt(r.old_key)} -> {r.new}" for r in plan.renames],
        database=database,
        unapply=list(unapply or []),
        bound=repo.binding() if repo is not None else None,
    )


def _state(
    repo: GitRepo | None, path: Path, old: str | None, new: str | None, mode: int
) -> jn.FileState:
    """The journal entry of ``path``: relative to the work tree, or to ``$GIT_DIR`` for the
    rename map (file modes other than 0644 and 0755 are written as 0644)."""
    mode = mode if mode in (0o644, 0o755) else 0o644
    if repo is None:
        return jn.FileState(str(path), old, new, mode)
    try:
        rel = path.resolve().relative_to(repo.git_dir).as_posix()
    except ValueError:
        return jn.FileState(repo.relative(path), old, new, mode)
    return jn.FileState(rel, old, new, mode, in_git_dir=True)


def _path(repo: GitRepo, state: jn.FileState) -> Path:
    """Where ``state`` lives in this checkout (wherever it has moved to)."""
    return (repo.git_dir if state.in_git_dir else repo.root) / state.path


# --------------------------------------------------------------------------- writing


def begin(repo: GitRepo, journal: jn.Journal, before_step: Step | None = None) -> None:
    _event("journal", before_step)
    jn.begin(repo.state_dir, journal)


def record(repo: GitRepo, step: str, before_step: Step | None = None) -> None:
    _event(step, before_step)
    jn.record(repo.state_dir, step)


def _set(path: Path, text: str | None, mode: int) -> None:
    if text is None:
        path.unlink(missing_ok=True)
    else:
        jn.write_durably(path, pysource.encode(text, like=path), mode)


def complete(repo: GitRepo, journal: jn.Journal, before_step: Step | None = None) -> None:
    """Bring every file and the index to the journal's "new" state, then drop the journal."""
    for state in journal.files:
        path = _path(repo, state)
        if _read(path) == state.new:
            continue
        verb = "delete" if state.new is None else "write"
        record(repo, f"{verb} {state.path}", before_step)
        _set(path, state.new, state.mode)
    if journal.index_paths:
        record(repo, "index", before_step)
        repo.set_index(journal.index_paths, journal.index_new)
    _event("finish", before_step)
    jn.end(repo.state_dir)


def undo(repo: GitRepo, journal: jn.Journal) -> list[str]:
    """Restore every file and index entry to the journal's "old" state, carrying on past
    errors; the problems left (empty: all restored, and the journal dropped)."""
    problems: list[str] = []
    try:
        repo.state_dir.mkdir(parents=True, exist_ok=True)
        jn.record(repo.state_dir, jn.UNDO)
    except OSError as exc:
        problems.append(f"{repo.state_dir / jn.LOG}: {exc}")
    for state in journal.files:
        path = _path(repo, state)
        try:
            if _read(path) != state.old:
                _set(path, state.old, state.mode)
        except OSError as exc:
            problems.append(f"{state.path}: {type(exc).__name__}: {exc}")
        path.with_name(f".{path.name}.migtools-tmp").unlink(missing_ok=True)
    if journal.index_paths:
        try:
            paths = [repo.root / rel for rel in journal.index_paths]
            if sorted(repo.index_entries(paths), key=_order) != sorted(
                journal.index_old, key=_order
            ):
                repo.set_index(journal.index_paths, journal.index_old)
        except Exception as exc:
            problems.append(f"the git index: {exc}")
    if not problems:
        jn.end(repo.state_dir)
    return problems


def _order(entry: IndexEntry) -> tuple[str, int]:
    return entry.path, entry.stage


def write(plan: Plan, repo: GitRepo, journal: jn.Journal, before_step: Step | None = None) -> None:
    """Journal and write ``plan``; on any exception restore every byte and raise
    :class:`RenumberWriteError`."""
    try:
        begin(repo, journal, before_step)
        complete(repo, journal, before_step)
    except BaseException as exc:
        problems = undo(repo, journal)
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise write_failed(exc, problems) from exc


def write_failed(exc: BaseException, problems: list[str], database: str = "") -> RenumberWriteError:
    """The error for a failed write: what failed, and what state the tree (and, when
    ``database`` describes it, the database) is left in."""
    if problems:
        listing = "\n".join(f"  {p}" for p in problems)
        return RenumberWriteError(
            f"Writing the changes failed ({type(exc).__name__}: {exc}), and restoring failed "
            f"too for:\n{listing}\nThe journal is kept: the next update_migration run "
            "finishes restoring them."
        )
    if database:
        return RenumberWriteError(
            f"Writing the changes failed ({type(exc).__name__}: {exc}); every file was "
            f"restored. {database}"
        )
    return RenumberWriteError(
        f"Writing the changes failed ({type(exc).__name__}: {exc}); every file was "
        "restored, nothing changed."
    )


def apply(
    plan: Plan,
    repo: GitRepo,
    before_step: Step | None = None,
    *,
    allow_dirty: bool = False,
) -> None:
    """Check, journal and write ``plan``, all or nothing. ``before_step(description)`` runs
    before each write (tests make it raise to prove that every byte is restored)."""
    dirty = check(plan, repo, allow_dirty=allow_dirty)
    write(plan, repo, prepare(plan, repo, dirty=dirty), before_step)


# --------------------------------------------------------------------------- recovering


@dataclass
class Recovery:
    """What was done about an interrupted run."""

    completed: bool  # True: finished; False: undone (or dropped)
    message: str
    gone: bool = False  # dropped: the git operation the run belonged to is gone


def recover(repo: GitRepo, scope: jn.Scope | None = None) -> Recovery | None:
    """Complete or undo the run a kill interrupted (None: there was none). A journal naming a
    file outside ``scope`` is refused (:class:`JournalError`, nothing changed); one whose git
    operation is gone (a merge aborted, a rebase stop passed) is dropped after removing what
    the run had written."""
    journal = jn.read(repo.state_dir, scope)
    if journal is None:
        return None
    what = ", ".join(journal.renames) or "the lockfile"
    if journal.bound is not None and journal.bound != repo.binding():
        return _clean_up(repo, journal)
    last = journal.log[-1] if journal.log else "its start"
    if jn.UNDO in journal.log or (journal.unapply and jn.DATABASE_ROLLED_BACK not in journal.log):
        problems = undo(repo, journal)
        if problems:
            listing = "\n".join(f"  {p}" for p in problems)
            raise JournalError(
                "An interrupted update_migration run could not be undone:\n"
                f"{listing}\nFix that, then run update_migration again."
            )
        detail = ""
        if journal.unapply and jn.DATABASE_ROLLED_BACK not in journal.log:
            detail = (
                f" It stopped while rolling back database '{journal.database}' "
                f"({', '.join(journal.unapply)}): check 'python manage.py showmigrations'."
            )
        return Recovery(
            False,
            f"update_migration was interrupted earlier ({what}): undid it, every file and "
            f"the index are as they were before it.{detail}",
        )
    foreign = [s.path for s in journal.files if _read(_path(repo, s)) not in (s.old, s.new)]
    if foreign:
        listing = "\n".join(f"  {p}" for p in foreign)
        raise JournalError(
            f"update_migration was interrupted earlier ({what}), and these files changed "
            f"since:\n{listing}\nIt can neither complete nor undo that run. Restore them (or "
            f"delete {repo.state_dir / jn.FILE} to give up on it), then run again."
        )
    complete(repo, journal)
    return Recovery(
        True, f"update_migration was interrupted earlier (after {last}): completed it: {what}."
    )


def _clean_up(repo: GitRepo, journal: jn.Journal) -> Recovery:
    """The run's git operation is gone (``git merge --abort``, ``git rebase --abort``, a stop
    passed): git has put back what it tracks; put every file the run touched back to the tree
    of HEAD (a file HEAD lacks and the run created: removed), when the file still holds what
    the run or the operation left there. The journal is dropped."""
    cleaned = 0
    problems: list[str] = []
    for state in journal.files:
        if state.in_git_dir:
            continue  # the rename map of a rebase that is gone: dropped as stale
        path = _path(repo, state)
        current = _read(path)
        if current not in (state.old, state.new):
            continue  # someone else's content now: leave it
        data = repo.bytes_at("HEAD", state.path)
        try:
            wanted = pysource.decode(data, state.path) if data is not None else None
        except (SyntaxError, UnicodeDecodeError):
            continue  # HEAD's version is not text we can compare: leave it to the user
        if wanted is None and state.old is not None and current == state.old:
            continue  # was there before the run and HEAD lacks it: the user's own file
        if current == wanted:
            continue
        try:
            _set(path, wanted, state.mode)
        except OSError as exc:
            problems.append(f"{state.path}: {exc.strerror}")
            continue
        cleaned += 1
        path.with_name(f".{path.name}.migtools-tmp").unlink(missing_ok=True)
    if problems:
        raise JournalError(
            "update_migration was interrupted earlier, and the "
            f"{journal.bound.describe() if journal.bound else 'operation'} it belonged to is "
            f"gone; cleaning up failed for: {'; '.join(problems)}. Fix that, then run again."
        )
    if journal.index_paths:
        repo.refresh_index()
    jn.end(repo.state_dir)
    kind = journal.bound.describe() if journal.bound else "operation"
    files = "file" if cleaned == 1 else "files"
    detail = ""
    if journal.unapply and jn.DATABASE_ROLLED_BACK in journal.log:
        detail = (
            f" The database '{journal.database}' was rolled back by that run "
            f"({', '.join(journal.unapply)}): run 'python manage.py migrate' to apply them again."
        )
    return Recovery(
        False,
        f"update_migration was interrupted earlier, and the {kind} this run belonged to is "
        f"gone; cleaned up {cleaned} {files}.{detail}",
        gone=True,
    )
