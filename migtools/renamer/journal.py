"""The update_migration journal: the intent of a run, written before its first change.

``$GIT_DIR/migtools/journal.json`` holds every file the run touches (old and new content, or
absence), the index entries to set and the entries they replace, and the database rollback
planned under ``--update-applied``; it is fsynced and renamed into place, so it exists whole
or not at all. ``journal.log`` beside it records each later step, one fsynced line each. A run
killed at any point leaves both behind; the next run completes (or undoes) it from them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from migtools.errors import JournalError
from migtools.gitrepo import IndexEntry

FILE = "journal.json"
LOG = "journal.log"
VERSION = 1

# steps recorded in the log that decide how an interrupted run is recovered
UNDO = "undo"
DATABASE_ROLLED_BACK = "database rolled back"


@dataclass
class FileState:
    """One path the run touches: its content before and after (None: absent)."""

    path: str  # absolute
    old: str | None
    new: str | None
    mode: int = 0o644


@dataclass
class Journal:
    files: list[FileState]
    index_paths: list[str]  # relative paths whose index entries the run replaces
    index_old: list[IndexEntry]  # their entries before (every stage)
    index_new: list[IndexEntry]  # their entries after
    renames: list[str] = field(default_factory=list)  # "app.old -> new", for messages
    database: str | None = None  # the alias rolled back under --update-applied
    unapply: list[str] = field(default_factory=list)  # "app.name" rolled back there
    log: list[str] = field(default_factory=list)  # steps done (read back, not written)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("log")
        data["version"] = VERSION
        return json.dumps(data, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, log: list[str]) -> Journal:
        data = json.loads(text)
        if data.pop("version", None) != VERSION:
            raise ValueError("unknown journal version")

        def entries(key: str) -> list[IndexEntry]:
            return [IndexEntry(**e) for e in data.pop(key)]

        index_old, index_new = entries("index_old"), entries("index_new")
        files = [FileState(**f) for f in data.pop("files")]
        return cls(files=files, index_old=index_old, index_new=index_new, log=log, **data)


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


def read(state_dir: Path) -> Journal | None:
    """The journal of an interrupted run (None: there is none)."""
    path = state_dir / FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        log = (state_dir / LOG).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        log = []
    try:
        return Journal.from_json(text, log)
    except (ValueError, TypeError, KeyError) as exc:
        raise JournalError(
            f"{path} (the journal of an interrupted update_migration run) cannot be read "
            f"({exc}). Check `git status`, then delete that file to go on."
        ) from None


def end(state_dir: Path) -> None:
    (state_dir / FILE).unlink(missing_ok=True)
    (state_dir / LOG).unlink(missing_ok=True)
    _fsync_dir(state_dir)
