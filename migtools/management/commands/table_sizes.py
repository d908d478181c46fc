"""Record production's table sizes for verification without a database (``--write``), check
them (``--check``), or show them: ``pg_class.reltuples`` of every table of the managed apps on
``--database`` (``migtools.rules.sizes``)."""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import UTC, datetime
from typing import Any, ClassVar

from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS, connections

from migtools import conf
from migtools.errors import CheckFailedError, UsageError
from migtools.management.base import MigtoolsCommandMixin, display_path
from migtools.rules import sizes


class Command(MigtoolsCommandMixin, BaseCommand):
    help = (
        "Show the row counts (pg_class.reltuples) of the managed apps' tables; --write records "
        f"them in {sizes.FILE_NAME} (commit it) for verify_migrations without a database; "
        "--check exits 1 when the file no longer says which tables are large."
    )
    requires_system_checks: ClassVar[list[str]] = []  # type: ignore[misc]

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--write", action="store_true", help="Record the sizes (this alias's section)."
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Exit 1 when a table is missing from the file or is large in the database "
            "but not in the file (or the other way round), by MIGTOOLS_LARGE_TABLE_ROWS.",
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="The database to measure (default: 'default'); each alias has its section.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["write"] and options["check"]:
            raise UsageError("--write and --check cannot be combined.")
        alias = options["database"]
        connection = connections[alias]
        if connection.vendor != "postgresql":
            raise UsageError(f"Database {alias!r} is not PostgreSQL: there is no reltuples.")
        measured = sizes.measure(connection, sizes.tables_of(alias))
        threshold = conf.large_table_rows()
        path = sizes.path()
        if options["check"]:
            self._check(alias, measured, threshold, options["verbosity"])
            return
        if options["write"]:
            records = sizes.read(path)
            records[alias] = sizes.Recorded(
                alias, datetime.now(UTC).replace(microsecond=0), measured
            )
            sizes.write(path, records)
            large = sorted(records[alias].large(threshold))
            self.stdout.write(
                self.style.SUCCESS(f"Wrote {display_path(path)}")
                + f" [{alias}]: {len(measured)} table(s), large: {', '.join(large) or 'none'}"
            )
            return
        for table in sorted(measured):
            mark = "  large" if sizes.is_large(measured[table], threshold) else ""
            self.stdout.write(f"{table}: {measured[table]}{mark}")

    def _check(self, alias: str, measured: dict[str, int], threshold: int, verbosity: int) -> None:
        path = sizes.path()
        record = sizes.read(path).get(alias)
        shown = display_path(path)
        if record is None:
            raise CheckFailedError(
                f"{shown} has no sizes for {alias!r}: run `manage.py table_sizes --write"
                f"{'' if alias == DEFAULT_DB_ALIAS else ' --database ' + alias}`."
            )
        problems = []
        for table in sorted(measured):
            now = sizes.is_large(measured[table], threshold)
            if table not in record.rows:
                problems.append(f"{table}: not in {shown} ({measured[table]} rows now)")
            elif now != sizes.is_large(record.rows[table], threshold):
                was = "large" if not now else "not large"
                problems.append(
                    f"{table}: {measured[table]} rows now, {record.rows[table]} recorded "
                    f"({was} in the file)"
                )
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CheckFailedError(
                f"{shown} [{alias}] is stale ({len(problems)} table(s), recorded "
                f"{record.age()} ago): run `manage.py table_sizes --write` and commit it."
            )
        if verbosity >= 1:
            self.stdout.write(f"{shown} [{alias}] is up to date (recorded {record.age()} ago).")
