"""``manage.py backfills [--run NAME] [--database ALIAS]``: every RunBackfill with its state
(pending, running, done, failed), rows, rate and last error; ``--run`` finishes one here."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import OperationalError

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
        if alias not in connections.settings:
            raise CommandError(f"Unknown database alias {alias!r}.", returncode=2)
        connection = connections[alias]
        try:
            connection.ensure_connection()
        except OperationalError as exc:
            cfg = connection.settings_dict
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise CommandError(
                f"Database {alias!r} ({cfg.get('HOST') or 'localhost'}:{cfg.get('PORT') or 5432}) "
                f"is unreachable: {reason}",
                returncode=1,
            ) from exc
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
