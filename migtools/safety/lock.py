"""The migrate lock: a PostgreSQL advisory lock per database, so two deploys never migrate at
once (the second waits for the first)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

ADVISORY_LOCK_NAME = "migtools.migrate"


def advisory_key(connection: BaseDatabaseWrapper) -> int:
    digest = hashlib.sha256(
        f"{ADVISORY_LOCK_NAME}:{connection.settings_dict.get('NAME')}".encode()
    ).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def migrate_lock(
    connection: BaseDatabaseWrapper, say: Callable[[str], None] = lambda _line: None
) -> Iterator[None]:
    """Hold the database's migrate lock for the block; ``say`` hears when it has to wait."""
    if connection.vendor != "postgresql":
        yield
        return
    key = advisory_key(connection)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        row = cursor.fetchone()
        if not (row and row[0]):
            say(
                "Another migrate is running on this database (advisory lock "
                f"{key}); waiting for it to finish..."
            )
            started = time.monotonic()
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
            say(f"Got the migrate lock after {time.monotonic() - started:.1f}s.")
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        except Exception:  # the session ended: its advisory locks went with it
            pass
