"""``manage.py backfills [--run NAME] [--database ALIAS]``: every RunBackfill with its state
(pending, running, done, failed), rows, rate and last error; ``--run`` finishes one here."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import OperationalError

from migtools import dberrors
from migtools.backfill import runners, status
from migtools.management.base import MigtoolsCommandMixin


class Command(MigtoolsCommandMixin, BaseCommand):
    help = "List the backfills (RunBackfill) and their progress, or finish one with --run."
    requires_system_checks = []  # noqa: RUF012 - reads progress only; no system checks

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--run", metavar="NAME", help="Finish this backfill here, inline.")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database alias.")

    def handle(self, *args: Any, **options: Any) -> None:
        alias = options["database"]
        connection = connections[alias]  # an unknown alias: exit 2 (MigtoolsCommandMixin)
        try:
            connection.ensure_connection()
        except OperationalError as exc:
            raise dberrors.unavailable(alias, exc) from exc
        if options["run"]:
            job = runners.locate(options["run"], alias)
            record = runners.finish(job, stream=self.stderr)
            self.stdout.write(
                self.style.SUCCESS(f"{record.name}: {record.state}, {record.rows:,} rows.")
            )
            return
        rows = status.listing(connection)
        if not rows:
            self.stdout.write("No backfills recorded.")
            return
        for line in status.table(rows):
            self.stdout.write(line)
