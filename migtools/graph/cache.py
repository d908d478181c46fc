"""What the graph reader parsed, remembered per migration file.

Parsing 5,000 migration files costs far more than Django's start-up; the lockfile check must
not. Each migrations directory keeps ``__pycache__/migtools-graph.marshal``: per file its size,
mtime and the parsed graph attributes, plus the values of the settings that were read to
resolve them (``swappable_dependency(settings.AUTH_USER_MODEL)``). An entry is used only when
all of them still match. Like git's index, an entry whose file changed less than
``RACY_SECONDS`` before it was parsed is not stored: a same-size edit within the file system's
timestamp granularity would otherwise go unnoticed.

The format is :mod:`marshal` (plain data only, nothing is executed on load; as fast to read as
the ``.pyc`` files beside it). ``MIGTOOLS_GRAPH_CACHE=0`` in the environment turns the cache
off.
"""

from __future__ import annotations

import marshal
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

VERSION = 3
FILENAME = "migtools-graph.marshal"
RACY_SECONDS = 2.0

Stamp = tuple[int, int]  # (size, mtime_ns)
# (stamp, settings used, dependencies, replaces, run_before, initial, line, ignored rules)
Entry = tuple[Stamp, dict[str, str], Any, Any, Any, bool, int, Any]


def enabled() -> bool:
    return os.environ.get("MIGTOOLS_GRAPH_CACHE", "1") not in ("0", "false", "no", "")


class ParseCache:
    """The cache of one migrations directory."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "__pycache__" / FILENAME
        self.entries: dict[str, Entry] = {}
        self.dirty = False
        self.started = time.time()
        try:
            data = marshal.loads(self.path.read_bytes())
        except (OSError, ValueError, EOFError, TypeError):
            return
        valid = isinstance(data, tuple) and len(data) == 2 and data[0] == VERSION
        if valid and isinstance(data[1], dict):
            self.entries = data[1]

    def get(self, name: str, stamp: Stamp, setting: Callable[[str], object]) -> Entry | None:
        """The entry for ``name`` if its stamp and every setting it used (``setting(NAME)``
        gives the current value) still match."""
        entry = self.entries.get(name)
        if entry is None or entry[0] != stamp:
            return None
        for key, value in entry[1].items():
            if setting(key) != value:
                return None
        return entry

    def put(
        self,
        name: str,
        stamp: Stamp,
        used: dict[str, str],
        dependencies: Any,
        replaces: Any,
        run_before: Any,
        initial: bool,
        line: int,
        ignored_rules: Any = (),
    ) -> None:
        if stamp[1] / 1e9 > self.started - RACY_SECONDS:
            if self.entries.pop(name, None) is not None:  # racy: too recent to trust the stamp
                self.dirty = True
            return
        self.entries[name] = (
            stamp,
            used,
            dependencies,
            replaces,
            run_before,
            initial,
            line,
            ignored_rules,
        )
        self.dirty = True

    def prune(self, names: set[str]) -> None:
        for name in set(self.entries) - names:
            del self.entries[name]
            self.dirty = True

    def save(self) -> None:
        """Write the cache; a read-only checkout just goes without one."""
        if not self.dirty:
            return
        try:
            self.path.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".migtools-graph.", dir=self.path.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(marshal.dumps((VERSION, self.entries)))
            os.replace(tmp, self.path)
        except OSError:
            return
        self.dirty = False
