"""The transaction around everything a test does on a warm copy, rolled back at the end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper


class RolledBack:
    """A transaction around everything a test does on a warm copy, rolled back at the end,
    sequences included (``nextval`` is not transactional): the next test sees the same ids.

    If the transaction did not survive (the test closed the connection, committed through
    another path, …) the copy's state is in doubt and ``on_doubt`` discards it.
    """

    def __init__(self, wrapper: BaseDatabaseWrapper, on_doubt: Callable[[], None]) -> None:
        self.wrapper = wrapper
        self.on_doubt = on_doubt
        self.sequences: dict[str, tuple[int | None, int]] = {}
        self.atomic: transaction.Atomic | None = None
        self.raw: Any = None

    def __enter__(self) -> RolledBack:
        self.sequences = self._read_sequences()
        self.atomic = transaction.atomic(using=self.wrapper.alias)
        self.atomic.__enter__()
        self.raw = self.wrapper.connection
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self.atomic is not None
        intact = (
            self.wrapper.connection is not None
            and self.wrapper.connection is self.raw
            and self.wrapper.in_atomic_block
            and len(self.wrapper.atomic_blocks) == 1
        )
        try:
            if intact:
                transaction.set_rollback(True, using=self.wrapper.alias)
                self.atomic.__exit__(None, None, None)
                self._restore_sequences()
        except Exception:
            intact = False
        if not intact:
            self.wrapper.close()
            self.wrapper.in_atomic_block = False
            self.wrapper.atomic_blocks = []
            self.wrapper.needs_rollback = False
            self.on_doubt()

    def settle(self) -> None:
        """Run the deferred constraint checks pending in the transaction now, as the commit
        that ends a step of a real deploy would (seeding, then each migration): PostgreSQL
        refuses ``ALTER TABLE`` on a table with pending trigger events, e.g. rows seeded with
        a foreign key before a migration that alters their table. Each constraint keeps its
        own mode afterwards (those created ``INITIALLY DEFERRED`` are deferred again)."""
        with self.wrapper.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                "SELECT format('%I.%I', n.nspname, c.conname) FROM pg_constraint c "
                "JOIN pg_namespace n ON n.oid = c.connamespace WHERE c.condeferred"
            )
            deferred = [str(row[0]) for row in cursor.fetchall()]
            if deferred:
                cursor.execute(f"SET CONSTRAINTS {', '.join(deferred)} DEFERRED")

    def _read_sequences(self) -> dict[str, tuple[int | None, int]]:
        with self.wrapper.cursor() as cursor:
            cursor.execute(
                "SELECT format('%I.%I', schemaname, sequencename), last_value, start_value "
                "FROM pg_sequences"
            )
            return {name: (last, start) for name, last, start in cursor.fetchall()}

    def _restore_sequences(self) -> None:
        now = self._read_sequences()
        changed = [
            (name, value) for name, value in self.sequences.items() if now.get(name) != value
        ]
        if changed:
            with self.wrapper.cursor() as cursor:
                for name, (last, start) in changed:
                    cursor.execute(
                        "SELECT setval(%s::regclass, %s, %s)",
                        (name, start if last is None else last, last is not None),
                    )
