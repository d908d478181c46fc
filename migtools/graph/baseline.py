"""The adoption baseline: ``migrations_baseline.txt``, beside the lockfile.

``manage.py migrations_lockfile --adopt`` (run once, when migtools comes into an existing
project, and committed) records each managed app's leaf at that moment: that migration and the
app's migrations before it are history written before migtools, never checked (``migrate`` from
an empty database and test-database creation do not refuse them); every migration written
after it is checked, a plain ``migrations.Migration`` included.

Why a file of its own rather than a section of the lockfile: the lockfile changes with every
new migration and conflicts on purpose when two branches add one to the same app; the
baseline is written once and never changes, so it must never take part in those conflicts
(nor in their resolution by ``update_migration``), and readers of the lockfile (other tools'
formats, the settings-free ``migtools lockfile --check``) keep seeing the lockfile they know.
Same format as the lockfile (``app: migration`` lines, ``#`` comments), so a review reads it
at a glance. ``migrations_lockfile --check`` keeps it true: an entry naming a migration that
is not on disk is reported. ``MIGTOOLS_BASELINE`` overrides it, app by app.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from migtools.errors import LockfileError
from migtools.graph import lockfile

FILE_NAME = "migrations_baseline.txt"

HEADER = """\
# migtools adoption baseline.
#
# One line per app: its latest migration when migtools was adopted. That migration and the
# ones before it in the app are history written before migtools: never checked. Every
# migration written after it is checked (a plain migrations.Migration included).
#
# Written once by `python manage.py migrations_lockfile --adopt`; commit it. Do not move
# an entry forward to silence a finding: fix the migration, or give it `ignore_rules`.
# MIGTOOLS_BASELINE in settings overrides an app's entry.
"""


def path_for(lockfile_path: Path) -> Path:
    """The baseline file beside ``lockfile_path``."""
    return lockfile_path.with_name(FILE_NAME)


def render(entries: Mapping[str, str]) -> str:
    body = "\n".join(f"{label}: {entries[label]}" for label in sorted(entries))
    return f"{HEADER}\n{body}\n" if body else HEADER


def read(path: Path) -> dict[str, str]:
    """The entries of the baseline at ``path``; ``{}`` when there is none. A file that cannot
    be read raises :class:`LockfileError` (one line, with the path)."""
    try:
        stat = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return dict(_read(str(path), stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, str], ...]:
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LockfileError(f"{path}: cannot read the migtools baseline ({exc}).") from None
    if lockfile.has_conflict_markers(text):
        raise LockfileError(
            f"{path} holds git conflict markers: keep one line per app (the baseline is "
            "written once, at adoption)."
        )
    return tuple(lockfile.parse(text, path).items())


def recorded() -> dict[str, str]:
    """The baseline file of this project (beside its lockfile)."""
    from migtools import project

    return read(path_for(project.lockfile_path()))


def effective() -> dict[str, str]:
    """The baseline in force: the recorded file, overridden app by app by
    ``MIGTOOLS_BASELINE``."""
    from migtools import conf

    return {**recorded(), **conf.baseline()}


def missing(entries: Mapping[str, str], names: Mapping[str, frozenset[str]]) -> list[str]:
    """One line per entry naming a migration that is not on disk (``names``: each app's
    migration names, replaced ones included)."""
    return [
        f"{label}: baseline names '{name}', which is not a migration of the app"
        for label, name in sorted(entries.items())
        if label in names and name not in names[label]
    ]
