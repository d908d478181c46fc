"""``manage.py verify_squashes [APP…]``: prove every squash faithful to what it replaces.

Thin: :func:`migtools.squash.proof.run` compares, this prints; exit 1 on any difference."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS

from migtools.errors import SquashError
from migtools.management.base import MigtoolsCommandMixin
from migtools.squash import proof as proving
from migtools.squash.compare import fmt


class Command(MigtoolsCommandMixin, BaseCommand):
    help = (
        "Compare what each squashed migration builds with what the migrations it replaces "
        "build: the project state (offline) and, with a database, the schemas of two scratch "
        "databases. Exits 1 on any difference."
    )
    requires_system_checks = []  # noqa: RUF012 - reads migrations only

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_label", nargs="*", help="Only these apps (default: every app).")
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="The server the scratch databases are created on (default: 'default').",
        )
        parser.add_argument(
            "--offline",
            action="store_true",
            help="Compare the project states only; touch no database.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        alias = None if options["offline"] else options["database"]
        result = proving.run(options["app_label"] or None, alias)
        if result.offline_reason is not None:
            self.stdout.write(self.style.NOTICE(f"Compared offline only: {result.offline_reason}."))
        if not result.comparisons:
            self.stdout.write("No squashed migrations (migrations with `replaces`) found.")
            return
        different = 0
        for item in result.comparisons:
            what = f"{fmt(item.squash)} (replaces {len(item.replaced)})"
            if item.skipped is not None:
                self.stdout.write(f"{what}: not compared: {item.skipped}.")
            elif item.faithful:
                where = "state and schema" if result.database else "state"
                self.stdout.write(f"{what}: " + self.style.SUCCESS(f"faithful ({where})"))
            else:
                different += 1
                self.stdout.write(f"{what}: " + self.style.ERROR("DIFFERS"))
                for line in item.differences:
                    self.stdout.write(f"  - {line}")
            for line in item.notes:
                self.stdout.write(f"  note: {line}")
            if item.elided:
                self.stdout.write("  The squash will not re-run these elidable operations:")
                for line in item.elided:
                    self.stdout.write(f"    {line}")
        if different:
            raise SquashError(f"{different} squashed migration(s) differ from what they replace.")
