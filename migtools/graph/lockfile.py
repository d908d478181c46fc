"""``migrations_lockfile.txt``: one line per managed app naming its latest migration.

Two branches that each add a migration to one app both change that app's line, so git reports
a conflict on merge instead of production finding two leaves. Entries are separated by a blank
line so that changes to neighbouring apps never touch the same hunk.

Reading is tolerant of what other tools wrote, and says which it was (:class:`Existing`):
Sentry's ``migrations_lockfile.txt`` (a prose header, then ``app: migration`` lines) and
django-linear-migrations' per-app ``migrations/max_migration.txt``. Writing always produces
ours.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Protocol

from migtools.errors import ConflictError, LockfileConflictError, LockfileError
from migtools.graph.disk import AppMigrations

HEADER = """\
# migtools migrations lockfile.
#
# One line per app: the latest migration of the app (the leaf of its migration graph).
# It makes two branches that both add a migration to one app conflict in git, instead of
# leaving the app with two leaf migrations after the merge.
#
# Resolve a conflict in this file with:  python manage.py update_migration
# Do not edit it by hand: `python manage.py makemigrations` keeps it current, and
# `python manage.py migrations_lockfile --check` verifies it.
"""


class Graph(Protocol):
    """What the lockfile needs of a migration graph (a :class:`~migtools.graph.disk.DiskGraph`,
    or the settings-free CLI's remembered leaves)."""

    @property
    def apps(self) -> Mapping[str, AppMigrations]: ...

    def conflicts(self) -> dict[str, list[str]]: ...

    def leaf(self, app_label: str) -> str | None: ...


_OURS, _BASE, _SPLIT, _THEIRS = "<<<<<<<", "|||||||", "=======", ">>>>>>>"
MAX_MIGRATION_FILE = "max_migration.txt"


class Kind(Enum):
    """Who wrote the lockfile that was read."""

    MIGTOOLS = "migtools"
    SENTRY = "sentry"
    MAX_MIGRATION = "max_migration"

    def describe(self) -> str:
        return {
            Kind.MIGTOOLS: "migtools' format",
            Kind.SENTRY: "Sentry's format",
            Kind.MAX_MIGRATION: f"django-linear-migrations' {MAX_MIGRATION_FILE} files",
        }[self]


@dataclass(frozen=True)
class Existing:
    """The lockfile as found: its entries, who wrote it, and the files it was read from."""

    entries: dict[str, str]
    kind: Kind
    sources: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class Mismatch:
    """One app whose lockfile line differs from the graph."""

    app_label: str
    expected: str | None
    actual: str | None

    def describe(self) -> str:
        if self.actual is None:
            return f"{self.app_label}: missing, expected '{self.expected}'"
        if self.expected is None:
            return f"{self.app_label}: listed as '{self.actual}' but the app is not managed or has no migrations"
        return f"{self.app_label}: lockfile says '{self.actual}', latest migration is '{self.expected}'"


@dataclass(frozen=True)
class ConflictSides:
    """The two versions of a lockfile that holds git conflict markers."""

    ours: dict[str, str]
    theirs: dict[str, str]
    base: dict[str, str] | None


def render(entries: Mapping[str, str]) -> str:
    body = "\n\n".join(f"{label}: {entries[label]}" for label in sorted(entries))
    return f"{HEADER}\n{body}\n" if body else HEADER


def has_conflict_markers(text: str) -> bool:
    return any(line.startswith((_OURS, _THEIRS)) for line in text.splitlines())


def _entry(line: str) -> tuple[str, str] | None:
    label, sep, name = line.partition(":")
    label, name = label.strip(), name.strip()
    if not sep or not label or not name or " " in name or " " in label:
        return None
    return label, name


def _first_line(lines: list[tuple[int, str]]) -> str:
    return next((raw.strip() for _, raw in lines if raw.strip()), "")


def _is_prose(line: str) -> bool:
    """A first line that is neither a comment nor an entry: Sentry's prose header."""
    return bool(line) and not line.startswith("#") and _entry(line) is None


def detect(text: str) -> Kind:
    """Sentry's lockfile opens with prose; ours with a ``#`` comment (or an entry)."""
    if _is_prose(_first_line(list(enumerate(text.splitlines(), start=1)))):
        return Kind.SENTRY
    return Kind.MIGTOOLS


def _parse_lines(lines: list[tuple[int, str]], path: str) -> dict[str, str]:
    entries: dict[str, str] = {}
    # A file that opens with prose (Sentry's) has a header up to its first entry.
    in_header = _is_prose(_first_line(lines))
    for lineno, raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        entry = _entry(line)
        if entry is None and in_header:
            continue
        in_header = False
        if entry is None:
            raise LockfileError(
                f"{path}:{lineno}: expected 'app_label: migration_name', got {raw!r}"
            )
        label, name = entry
        if label in entries:
            raise LockfileError(f"{path}:{lineno}: app '{label}' is listed twice")
        entries[label] = name
    return entries


def split_conflict(text: str, path: str = "migrations_lockfile.txt") -> ConflictSides:
    """Both sides of a conflicted lockfile (merge and diff3/zdiff3 styles)."""
    ours: list[tuple[int, str]] = []
    theirs: list[tuple[int, str]] = []
    base: list[tuple[int, str]] = []
    saw_base = False
    section = "both"
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.startswith(_OURS):
            section = "ours"
        elif line.startswith(_BASE) and section == "ours":
            section, saw_base = "base", True
        elif line.startswith(_SPLIT) and section in ("ours", "base"):
            section = "theirs"
        elif line.startswith(_THEIRS) and section == "theirs":
            section = "both"
        elif section == "both":
            ours.append((lineno, line))
            theirs.append((lineno, line))
            base.append((lineno, line))
        elif section == "ours":
            ours.append((lineno, line))
        elif section == "base":
            base.append((lineno, line))
        else:
            theirs.append((lineno, line))
    if section != "both":
        raise LockfileError(f"{path}: unterminated git conflict block")
    return ConflictSides(
        ours=_parse_lines(ours, path),
        theirs=_parse_lines(theirs, path),
        base=_parse_lines(base, path) if saw_base else None,
    )


def parse(text: str, path: str = "migrations_lockfile.txt") -> dict[str, str]:
    """Entries of a lockfile; conflict markers raise :class:`LockfileConflictError`."""
    if has_conflict_markers(text):
        raise LockfileConflictError(
            f"{path} holds git conflict markers: two branches added migrations to the same app.\n"
            "Run 'python manage.py update_migration' to renumber your branch's migrations "
            "after main's and rewrite the lockfile."
        )
    return _parse_lines(list(enumerate(text.splitlines(), start=1)), path)


def read(path: Path) -> dict[str, str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LockfileError(
            f"No lockfile at {path}. Create it with 'python manage.py migrations_lockfile'."
        ) from None
    except IsADirectoryError:
        raise LockfileError(f"{path} is a directory, not a lockfile.") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise LockfileError(
            f"{path}:{line}: byte 0x{data[exc.start]:02x} is not UTF-8; rewrite the file with "
            "'python manage.py migrations_lockfile'."
        ) from None
    return parse(text, str(path))


def read_max_migration(directories: Mapping[str, Path | None]) -> Existing | None:
    """django-linear-migrations' ``max_migration.txt`` of each app (label -> its migrations
    directory), or None when no app has one."""
    entries: dict[str, str] = {}
    sources: list[Path] = []
    for label in sorted(directories):
        directory = directories[label]
        if directory is None:
            continue
        path = directory / MAX_MIGRATION_FILE
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            continue
        names = [line.strip() for line in text.splitlines() if line.strip()]
        if len(names) != 1 or " " in names[0]:
            raise LockfileError(f"{path}: expected one migration name, got {text!r}")
        entries[label] = names[0]
        sources.append(path)
    return Existing(entries, Kind.MAX_MIGRATION, sources) if sources else None


def existing(path: Path, directories: Mapping[str, Path | None]) -> Existing:
    """The lockfile at ``path`` (ours or Sentry's), else the apps' ``max_migration.txt``
    files; raises :class:`LockfileError` when there is neither (or it cannot be parsed)."""
    if not path.exists():
        linear = read_max_migration(directories)
        if linear is not None:
            return linear
    entries = read(path)
    text = path.read_bytes().decode("utf-8", errors="replace")
    return Existing(entries, detect(text), [path])


def directories(graph: Graph) -> dict[str, Path | None]:
    return {label: app.directory for label, app in graph.apps.items()}


def found_other_kind(path: Path, graph: Graph) -> Existing | None:
    """Another tool's lockfile that writing ours will convert (None: ours, or none at all).
    An unreadable file is not an error here: it is about to be replaced."""
    try:
        found = existing(path, directories(graph))
    except LockfileError:
        return None
    return None if found.kind is Kind.MIGTOOLS else found


def stale_message(shown_path: str, count: int) -> str:
    return (
        f"{shown_path} is stale ({count} app(s)). Run "
        "'python manage.py migrations_lockfile' to rewrite it."
    )


def converted_message(found: Existing, shown_path: str) -> str:
    """What ``migrations_lockfile`` says after rewriting another tool's lockfile as ours."""
    if found.kind is Kind.MAX_MIGRATION:
        return (
            f"Converted {len(found.sources)} {MAX_MIGRATION_FILE} file(s) "
            f"(django-linear-migrations) into {shown_path}. Remove them and "
            "django-linear-migrations once you commit it."
        )
    return f"Converted {shown_path} from {found.kind.describe()} to migtools' format."


def expected(graph: Graph) -> dict[str, str]:
    """The entries the lockfile should hold: each read app that has migrations, its leaf.

    Several leaves in an app raise :class:`ConflictError` naming every conflict.
    """
    conflicts = graph.conflicts()
    if conflicts:
        raise ConflictError(conflicts)
    result = {}
    for label in graph.apps:
        leaf = graph.leaf(label)
        if leaf is not None:
            result[label] = leaf
    return result


def compare(actual: Mapping[str, str], wanted: Mapping[str, str]) -> list[Mismatch]:
    return [
        Mismatch(label, wanted.get(label), actual.get(label))
        for label in sorted(set(actual) | set(wanted))
        if actual.get(label) != wanted.get(label)
    ]


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write(path: Path, entries: Mapping[str, str]) -> bool:
    """Write the lockfile; return True when its content changed."""
    text = render(entries)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass  # missing, or not UTF-8: rewritten in our format
    write_atomic(path, text)
    return True


def check(path: Path, graph: Graph) -> list[Mismatch]:
    """Mismatches between the lockfile at ``path`` (ours, Sentry's, or else the apps'
    ``max_migration.txt`` files) and the graph (raises on a missing, unparsable or conflicted
    lockfile, and on several leaves)."""
    return compare(existing(path, directories(graph)).entries, expected(graph))
