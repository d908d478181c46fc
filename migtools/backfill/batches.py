"""Keyset batches over a model's primary key: ascending ranges ``(lo, hi]``, no OFFSET.

Integer and UUID primary keys are supported (both have a total order PostgreSQL's b-tree
serves); composite and other keys are refused with a clear message. Keys travel as text (the
progress store's ``last_key``) and are converted back by the key's kind.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migtools.errors import BackfillError

if TYPE_CHECKING:
    from django.db.backends.utils import CursorWrapper
    from django.db.models import Model, Q, QuerySet

_INTEGER_TYPES = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "PositiveSmallIntegerField",
    }
)


@dataclass(frozen=True)
class Keys:
    """How to walk one model's primary key."""

    table: str
    column: str
    kind: str  # "integer" | "uuid"

    def parse(self, text: str | None) -> Any:
        if text is None:
            return None
        return int(text) if self.kind == "integer" else uuid.UUID(text)

    @property
    def cast(self) -> str:
        return "bigint" if self.kind == "integer" else "uuid"


def keys_of(model: type[Model], where: str) -> Keys:
    """The model's key walk, or ``BackfillError`` for keys that cannot be walked."""
    meta = model._meta
    pk = meta.pk
    pk_fields = getattr(meta, "pk_fields", None)
    if pk is None or (pk_fields is not None and len(pk_fields) != 1):
        raise BackfillError(
            f"{where}: RunBackfill walks a single-column primary key; {meta.label} has a "
            "composite primary key. Backfill it with RunPython over ranges of one of its "
            "indexed columns, or add a single-column key first."
        )
    internal = pk.get_internal_type()
    if pk.remote_field is not None:  # a OneToOneField primary key: the target's key type
        internal = pk.target_field.get_internal_type()  # type: ignore[attr-defined]
    if internal in _INTEGER_TYPES:
        kind = "integer"
    elif internal == "UUIDField":
        kind = "uuid"
    else:
        raise BackfillError(
            f"{where}: RunBackfill walks integer or UUID primary keys; {meta.label}.{pk.name} "
            f"is a {internal}."
        )
    return Keys(str(meta.db_table), str(pk.column), kind)


def next_range(
    cursor: CursorWrapper, keys: Keys, after: str | None, size: int, quote: Any
) -> tuple[int, str | None]:
    """(number of keys, last key) of the next ``size`` keys after ``after`` (None: from the
    start). (0, None) when no key is left."""
    col, table = quote(keys.column), quote(keys.table)
    where = f"WHERE {col} > %s::{keys.cast} " if after is not None else ""
    params: list[Any] = [after] if after is not None else []
    cursor.execute(
        f"SELECT count(*) OVER (), s.key::text FROM (SELECT {col} AS key FROM {table} {where}"
        f"ORDER BY {col} LIMIT %s) s ORDER BY s.key DESC LIMIT 1",
        [*params, size],
    )
    row = cursor.fetchone()
    if not row or not row[0]:
        return 0, None
    return int(row[0]), str(row[1])


def all_ranges(
    cursor: CursorWrapper, keys: Keys, size: int, quote: Any
) -> list[tuple[str | None, str, int]]:
    """Every range ``(lo, hi, count)`` of ``size`` keys, in one pass over the key index."""
    col, table = quote(keys.column), quote(keys.table)
    cursor.execute(
        f"SELECT k::text, rn FROM (SELECT {col} AS k, row_number() OVER (ORDER BY {col}) AS rn, "
        f"count(*) OVER () AS total FROM {table}) s WHERE rn %% %s = 0 OR rn = total ORDER BY rn",
        [size],
    )
    out: list[tuple[str | None, str, int]] = []
    previous: str | None = None
    previous_rn = 0
    for last, rn in cursor.fetchall():
        out.append((previous, str(last), int(rn) - previous_rn))
        previous, previous_rn = str(last), int(rn)
    return out


def estimate_rows(cursor: CursorWrapper, keys: Keys, quote: Any) -> int | None:
    """The planner's row estimate (free), or an exact count when the table was never analysed."""
    cursor.execute(
        "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [quote(keys.table)]
    )
    row = cursor.fetchone()
    if row and row[0] is not None and int(row[0]) >= 0:
        return int(row[0])
    cursor.execute(f"SELECT count(*) FROM {quote(keys.table)}")
    row = cursor.fetchone()
    return int(row[0]) if row else None


def batch(
    model: type[Model], keys: Keys, lo: str | None, hi: str, alias: str, filter: Q | None
) -> QuerySet[Any]:
    """The QuerySet of one range ``(lo, hi]`` (and ``filter``)."""
    qs = model._default_manager.using(alias).filter(pk__lte=keys.parse(hi))
    if lo is not None:
        qs = qs.filter(pk__gt=keys.parse(lo))
    if filter is not None:
        qs = qs.filter(filter)
    return qs
