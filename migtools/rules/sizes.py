"""Production's table sizes, recorded: ``migrations_table_sizes.txt`` (beside the lockfile).

Online, a table is large when its ``pg_class.reltuples`` exceeds ``MIGTOOLS_LARGE_TABLE_ROWS``
(:func:`migtools.rules.operation.large_tables`). Without a database (pre-commit, a lint job)
that number is unknown, so ``manage.py table_sizes --write``, run against production (or a
recent copy of it), records the ``reltuples`` of every table of the managed apps into a
committed file; the offline verifier reads it and decides with the same rule
(:func:`is_large`), so its findings equal the online ones on the same sizes.

The file is sorted, one ``table: rows`` line per table under a ``[alias] recorded <UTC time>``
heading per database alias, so a review reads it at a glance and a diff shows what grew::

    [default] recorded 2026-12-04T23:40:12Z
    shop_item: 1250000
    shop_order: 53

``-1`` is PostgreSQL's "never analyzed" (not large, as online).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from migtools.errors import MigtoolsError

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

FILE_NAME = "migrations_table_sizes.txt"

HEADER = """\
# migtools table sizes: pg_class.reltuples of the managed apps' tables, per database alias.
#
# Written by `python manage.py table_sizes --write` against production (or a recent copy);
# commit it. Without a database the verifier reads the sizes here: a table is large when its
# rows exceed MIGTOOLS_LARGE_TABLE_ROWS, as online. -1: never analyzed.
"""

_SECTION = re.compile(r"^\[(?P<alias>[^\]\s]+)\]\s+recorded\s+(?P<when>\S+)\s*$")
_ROW = re.compile(r"^(?P<table>[^:\s]+):\s*(?P<rows>-?\d+)\s*$")


class TableSizesError(MigtoolsError):
    """The sizes file cannot be read (exit 1, one line naming the file and the line)."""


@dataclass(frozen=True)
class Recorded:
    """One alias's sizes and when they were measured."""

    alias: str
    recorded: datetime
    rows: dict[str, int] = field(default_factory=dict)

    def large(self, threshold: int) -> set[str]:
        return {table for table, rows in self.rows.items() if is_large(rows, threshold)}

    def age(self, now: datetime | None = None) -> str:
        """How old the sizes are, in words (``"3 days"``, ``"5 hours"``, ``"2 minutes"``)."""
        seconds = max(0.0, ((now or datetime.now(UTC)) - self.recorded).total_seconds())
        for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if seconds >= length:
                count = int(seconds // length)
                return f"{count} {unit}{'s' if count != 1 else ''}"
        return "less than a minute"


def is_large(rows: int, threshold: int) -> bool:
    """The one rule, online (in SQL) and offline: more rows than ``threshold``."""
    return rows > threshold


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render(records: Mapping[str, Recorded]) -> str:
    parts = [HEADER]
    for alias in sorted(records):
        record = records[alias]
        lines = [f"[{alias}] recorded {_stamp(record.recorded)}"]
        lines += [f"{table}: {record.rows[table]}" for table in sorted(record.rows)]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def parse(text: str, where: str) -> dict[str, Recorded]:
    records: dict[str, Recorded] = {}
    current: Recorded | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        section = _SECTION.match(line)
        if section is not None:
            try:
                when = datetime.strptime(section["when"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            except ValueError:
                raise TableSizesError(
                    f"{where}:{number}: {section['when']!r} is not a UTC time such as "
                    "2026-12-04T23:40:12Z. Rewrite the file with `manage.py table_sizes --write`."
                ) from None
            current = Recorded(section["alias"], when)
            records[current.alias] = current
            continue
        row = _ROW.match(line)
        if row is None or current is None:
            expected = "'table: rows'" if current is not None else "'[alias] recorded <time>'"
            raise TableSizesError(
                f"{where}:{number}: expected {expected}, not {line!r}. Rewrite the file with "
                "`manage.py table_sizes --write`."
            )
        current.rows[row["table"]] = int(row["rows"])
    return records


def read(path: Path) -> dict[str, Recorded]:
    """The records of the file at ``path``; ``{}`` when there is none."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as exc:
        raise TableSizesError(f"{path}: cannot read the table sizes ({exc}).") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TableSizesError(f"{path}: not UTF-8 ({exc}).") from None
    return parse(text, str(path))


def write(path: Path, records: Mapping[str, Recorded]) -> None:
    path.write_text(render(records), encoding="utf-8")


def tables_of(alias: str) -> list[str]:
    """The tables of the managed apps' models that the router lets live on ``alias``, plus
    ``MIGTOOLS_HISTORICAL_TABLES`` mapped to it."""
    from django.db import router

    from migtools import conf, project

    tables: set[str] = set()
    for config in project.managed_apps():
        for model in config.get_models(include_auto_created=True):
            if model._meta.managed and router.allow_migrate_model(alias, model):
                tables.add(model._meta.db_table)
    tables.update(t for t, a in conf.historical_tables().items() if a == alias)
    return sorted(tables)


def measure(connection: BaseDatabaseWrapper, tables: Iterable[str]) -> dict[str, int]:
    """``reltuples`` of those of ``tables`` that exist (visible on the search path)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.reltuples FROM pg_class c WHERE c.relkind IN ('r', 'p') "
            "AND c.relname = ANY(%s) AND pg_table_is_visible(c.oid)",
            [list(tables)],
        )
        return {str(name): int(rows) for name, rows in cursor.fetchall()}


def path() -> Path:
    from migtools import project

    return project.table_sizes_path()


def recorded(alias: str) -> Recorded | None:
    """This project's recorded sizes for ``alias``, if any."""
    return read(path()).get(alias)
