"""The project state before the first migration a run judges, remembered by content.

Replaying a long history costs far more than judging one new migration: importing every
migration module and mutating the state over each. The state reached just before the first
judged migration is pickled (the unrendered ``ModelState`` objects of
``ProjectState.models``) beside the parse cache (``migtools.graph.cache``), in the
``__pycache__`` directory of that migration's package, keyed by a hash of everything the
state depends on: the nodes before that point in plan order and their files' contents, the
apps Django treats as unmigrated, the Django and migtools versions and the settings that
shape a state (``INSTALLED_APPS``, ``MIGRATION_MODULES``, ``DEFAULT_AUTO_FIELD``,
``AUTH_USER_MODEL``). A miss replays the history and stores the state; a state that does not
pickle (a lambda as a field default) is not stored. The last few states per directory are
kept.

Like ``.pyc`` files, the cache trusts the code the migrations import (a custom field class
changed in place is read from the current code). ``MIGTOOLS_STATE_CACHE = False`` in the
settings, or ``MIGTOOLS_STATE_CACHE=0`` in the environment, turns it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import django
from django.conf import settings

import migtools

VERSION = 1
PREFIX = "migtools-state-"
KEEP = 4

Node = tuple[str, str]


def enabled() -> bool:
    if os.environ.get("MIGTOOLS_STATE_CACHE", "1").lower() in ("0", "false", "no", ""):
        return False
    return bool(getattr(settings, "MIGTOOLS_STATE_CACHE", True))


def key(prefix: Iterable[tuple[Node, str | None]], real_apps: Iterable[str]) -> str | None:
    """The content key of the state after ``prefix`` (``(node, file)`` in plan order); None
    when a file cannot be read (no cache then)."""
    digest = hashlib.blake2b(digest_size=20)
    shaping = (
        VERSION,
        django.__version__,
        migtools.__version__,
        list(getattr(settings, "INSTALLED_APPS", ())),
        repr(sorted(getattr(settings, "MIGRATION_MODULES", {}).items())),
        str(getattr(settings, "DEFAULT_AUTO_FIELD", "")),
        str(getattr(settings, "AUTH_USER_MODEL", "")),
        sorted(real_apps),
    )
    digest.update(repr(shaping).encode())
    for node, path in prefix:
        digest.update(f"\0{node[0]}\0{node[1]}\0".encode())
        if path is None:
            return None
        try:
            with open(path, "rb") as fh:
                digest.update(fh.read())
        except OSError:
            return None
    return digest.hexdigest()


def _file(directory: Path, content_key: str) -> Path:
    return directory / "__pycache__" / f"{PREFIX}{content_key}.pickle"


def get(directory: Path, content_key: str) -> dict[tuple[str, str], Any] | None:
    """The stored ``ProjectState.models`` for the key, or None."""
    path = _file(directory, content_key)
    try:
        data = path.read_bytes()
        models = pickle.loads(data)  # our own file, as trusted as the .pyc beside it
    except Exception:  # a missing, stale or unreadable entry is a miss
        return None
    if not isinstance(models, dict):
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: kept by the pruning
    return models


def put(directory: Path, content_key: str, models: dict[tuple[str, str], Any]) -> bool:
    """Store the state; False when it does not pickle or cannot be written."""
    try:
        data = pickle.dumps(models, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # e.g. a lambda as a default: go without a cache
        return False
    target = _file(directory, content_key)
    try:
        target.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{PREFIX}", dir=target.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except OSError:
        return False
    _prune(target.parent)
    return True


def _prune(directory: Path) -> None:
    try:
        entries = sorted(
            (p for p in directory.iterdir() if p.name.startswith(PREFIX)),
            key=lambda p: p.stat().st_mtime_ns,
        )
        for old in entries[:-KEEP]:
            old.unlink()
    except OSError:
        return
