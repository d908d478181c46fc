"""The update_migration journal: the intent of a run, written before its first change.

``$GIT_DIR/migtools/journal.json`` holds every file the run touches (old and new content, or
absence), the index entries to set and the entries they replace, the git operation the run
belongs to (HEAD, and MERGE_HEAD or the rebase's onto and orig-head), and the database
rollback planned under ``--update-applied``; it is fsynced and renamed into place, so it
exists whole or not at all. ``journal.log`` beside it records each later step, one fsynced
line each. A run killed at any point leaves both behind; the next run completes (or undoes)
it from them.

The journal is read as untrusted input: paths are relative to the work tree (so a moved
checkout still completes), and :func:`read` refuses any that leaves the tree or names a file
that is not a migration file, the lockfile or a migration test of the project
(:class:`Scope`), and any malformed value, with one line saying the way out.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from migtools.errors import JournalError
from migtools.gitrepo import Binding, IndexEntry

FILE = "journal.json"
LOG = "journal.log"
VERSION = 2

# steps recorded in the log that decide how an interrupted run is recovered
UNDO = "undo"
DATABASE_ROLLED_BACK = "database rolled back"

# the one file under $GIT_DIR a run may write (the rebase rename map), relative to $GIT_DIR
GIT_DIR_FILES = ("migtools/renames.json",)

_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_MODES = ("100644", "100755", "120000")


@dataclass
class FileState:
    """One path the run touches: its content before and after (None: absent).

    ``path`` is relative to the work tree (posix), or to ``$GIT_DIR`` when ``in_git_dir``."""

    path: str
    old: str | None
    new: str | None
    mode: int = 0o644
    in_git_dir: bool = False


@dataclass
class Journal:
    files: list[FileState]
    index_paths: list[str]  # relative paths whose index entries the run replaces
    index_old: list[IndexEntry]  # their entries before (every stage)
    index_new: list[IndexEntry]  # their entries after
    renames: list[str] = field(default_factory=list)  # "app.old -> new", for messages
    database: str | None = None  # the alias rolled back under --update-applied
    unapply: list[str] = field(default_factory=list)  # "app.name" rolled back there
    bound: Binding | None = None  # the git operation the run belongs to
    log: list[str] = field(default_factory=list)  # steps done (read back, not written)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("log")
        data["version"] = VERSION
        return json.dumps(data, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, log: list[str]) -> Journal:
        """Parse and type-check a journal (ValueError naming what is wrong)."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("version") != VERSION:
            raise ValueError(f"unknown journal version {data.get('version')!r}")
        files = [_file_state(f) for f in _list(data, "files")]
        index_paths = [_rel_path(p, "index_paths") for p in _list(data, "index_paths")]
        index_old = [_entry(e) for e in _list(data, "index_old")]
        index_new = [_entry(e) for e in _list(data, "index_new")]
        renames = [_str(r, "renames") for r in _list(data, "renames")]
        unapply = [_str(r, "unapply") for r in _list(data, "unapply")]
        database = data.get("database")
        if database is not None and not isinstance(database, str):
            raise ValueError("database is not a string")
        bound = data.get("bound")
        binding = None
        if bound is not None:
            if not isinstance(bound, dict) or set(bound) != set(Binding.__dataclass_fields__):
                raise ValueError("bound is not a git state")
            for value in bound.values():
                if value is not None and not isinstance(value, str):
                    raise ValueError("bound holds a non-string")
            binding = Binding(**bound)
        return cls(
            files=files,
            index_paths=index_paths,
            index_old=index_old,
            index_new=index_new,
            renames=renames,
            database=database,
            unapply=unapply,
            bound=binding,
            log=log,
        )


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{key} is not a list")
    return value


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what}: {value!r} is not a string")
    return value


def _rel_path(value: object, what: str) -> str:
    """A relative posix path that stays below its base (no absolute, no '..', no NUL)."""
    text = _str(value, what)
    pure = PurePosixPath(text)
    if not text or "\0" in text or "\\" in text or pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"{what}: {text!r} is not a path inside the work tree")
    return text


def _text(value: object, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{what} is not text")
    return value


def _file_state(value: object) -> FileState:
    if not isinstance(value, dict):
        raise ValueError("a file entry is not an object")
    path = _rel_path(value.get("path"), "path")
    in_git_dir = value.get("in_git_dir", False)
    if not isinstance(in_git_dir, bool):
        raise ValueError("in_git_dir is not true or false")
    if in_git_dir and path not in GIT_DIR_FILES:
        raise ValueError(f"{path!r} is not a file update_migration keeps under $GIT_DIR")
    mode = value.get("mode", 0o644)
    if not isinstance(mode, int) or isinstance(mode, bool) or mode not in (0o644, 0o755):
        raise ValueError(f"{path}: mode {mode!r} is not 0644 or 0755")
    old, new = _text(value.get("old"), f"{path}: old"), _text(value.get("new"), f"{path}: new")
    return FileState(path, old, new, mode, in_git_dir)


def _entry(value: object) -> IndexEntry:
    if not isinstance(value, dict):
        raise ValueError("an index entry is not an object")
    mode, sha, stage = value.get("mode"), value.get("sha"), value.get("stage")
    if mode not in _MODES or not isinstance(sha, str) or not _SHA.match(sha):
        raise ValueError(f"index entry {value.get('path')!r}: bad mode or object id")
    if not isinstance(stage, int) or isinstance(stage, bool) or stage not in (0, 1, 2, 3):
        raise ValueError(f"index entry {value.get('path')!r}: bad stage")
    return IndexEntry(str(mode), sha, stage, _rel_path(value.get("path"), "index path"))


@dataclass(frozen=True)
class Scope:
    """The files a journal may touch: in the work tree ``root``, a ``.py`` file directly in
    one of ``migration_dirs``, the ``lockfile``, or a file ``is_test`` accepts."""

    root: Path
    migration_dirs: frozenset[Path]
    lockfile: Path
    is_test: Callable[[Path], bool]

    def refusal(self, rel: str) -> str | None:
        """Why the journal may not touch ``rel`` (None: it may)."""
        path = (self.root / rel).resolve()
        try:
            path.relative_to(self.root)
        except ValueError:
            return f"{rel} resolves outside the work tree {self.root}"
        if path == self.lockfile.resolve():
            return None
        if path.suffix == ".py" and path.parent in self.migration_dirs:
            return None
        if path.suffix == ".py" and self.is_test(path):
            return None
        return f"{rel} is not a migration file, the lockfile or a migration test of this project"


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file: fsynced, then renamed over it."""
    tmp = path.with_name(f".{path.name}.migtools-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644 if mode is None else mode)
    try:
        os.write(fd, data)
        if mode is not None:
            os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def begin(state_dir: Path, journal: Journal) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / LOG).unlink(missing_ok=True)
    write_durably(state_dir / FILE, journal.to_json().encode("utf-8"))


def record(state_dir: Path, step: str) -> None:
    fd = os.open(state_dir / LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, f"{step}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read(state_dir: Path, scope: Scope | None = None) -> Journal | None:
    """The journal of an interrupted run (None: there is none); :class:`JournalError` (one
    line with the way out) when it cannot be read or names a file outside ``scope``."""
    path = state_dir / FILE
    way_out = f"Nothing was changed. Check `git status`, then delete {path} to give up on that run."
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalError(
            f"{path} (the journal of an interrupted update_migration run) cannot be read "
            f"({exc.strerror}). {way_out}"
        ) from None
    try:
        log = (state_dir / LOG).read_bytes().decode("utf-8").splitlines()
    except FileNotFoundError:
        log = []
    except (OSError, UnicodeDecodeError):
        log = []  # a torn or foreign log: recovered as if no step was recorded
    try:
        journal = Journal.from_json(raw.decode("utf-8"), log)
    except UnicodeDecodeError:
        raise JournalError(
            f"{path} (the journal of an interrupted update_migration run) is not UTF-8 "
            f"text. {way_out}"
        ) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise JournalError(
            f"{path} (the journal of an interrupted update_migration run) cannot be read "
            f"({exc}). {way_out}"
        ) from None
    if scope is not None:
        rels = [f.path for f in journal.files if not f.in_git_dir]
        rels += journal.index_paths + [e.path for e in journal.index_new + journal.index_old]
        for rel in rels:
            reason = scope.refusal(rel)
            if reason is not None:
                raise JournalError(
                    f"{path} (the journal of an interrupted update_migration run) is refused: "
                    f"{reason}. {way_out}"
                )
    return journal


def end(state_dir: Path) -> None:
    (state_dir / FILE).unlink(missing_ok=True)
    (state_dir / LOG).unlink(missing_ok=True)
    _fsync_dir(state_dir)
