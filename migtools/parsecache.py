"""What the graph reader parsed, remembered per migration file.

Parsing 5,000 migration files costs far more than Django's start-up; the lockfile check must
not. Each migrations directory keeps ``__pycache__/migtools-graph.json``: per file its size,
mtime and the parsed graph attributes, plus the values of the settings that were read to
resolve them (``swappable_dependency(settings.AUTH_USER_MODEL)``). An entry is used only when
all of them still match. Like git's index, an entry whose file changed less than
``RACY_SECONDS`` before it was parsed is not stored: a same-size edit within the file system's
timestamp granularity would otherwise go unnoticed.

``MIGTOOLS_GRAPH_CACHE=0`` in the environment turns the cache off.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings

VERSION = 1
FILENAME = "migtools-graph.json"
RACY_SECONDS = 2.0

Stamp = tuple[int, int]  # (size, mtime_ns)


def enabled() -> bool:
    return os.environ.get("MIGTOOLS_GRAPH_CACHE", "1") not in ("0", "false", "no", "")


class ParseCache:
    """The cache of one migrations directory."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "__pycache__" / FILENAME
        self.entries: dict[str, dict[str, Any]] = {}
        self.dirty = False
        self.started = time.time()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("version") == VERSION:
            files = data.get("files")
            if isinstance(files, dict):
                self.entries = files

    def get(self, name: str, stamp: Stamp) -> dict[str, Any] | None:
        entry = self.entries.get(name)
        if entry is None or tuple(entry.get("stamp", ())) != stamp:
            return None
        used = entry.get("settings", {})
        if any(getattr(settings, key, None) != value for key, value in used.items()):
            return None
        return entry

    def put(self, name: str, stamp: Stamp, data: dict[str, Any], used: dict[str, str]) -> None:
        if stamp[1] / 1e9 > self.started - RACY_SECONDS:
            self.entries.pop(name, None)  # racy: changed too recently to trust the stamp
            self.dirty = True
            return
        self.entries[name] = {"stamp": list(stamp), "settings": used, **data}
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
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"version": VERSION, "files": self.entries}, fh, separators=(",", ":"))
            os.replace(tmp, self.path)
        except OSError:
            return
        self.dirty = False
