"""``manage.py prune_squashed [APP…] [--dry-run] [--database ALIAS…]``: once a squash is
deployed, make it a normal migration (Django's manual steps, journaled and all or nothing).

Thin: :func:`migtools.squash.workflow.run` does it; its messages are printed here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS

from migtools.management.base import MigtoolsCommandMixin
from migtools.renamer import workflow as messages
from migtools.squash import workflow


class Command(MigtoolsCommandMixin, BaseCommand):
    help = (
        "Once a squash is deployed everywhere: delete the migrations it replaces, point every "
        "dependency and migration test at the squash, remove its replaces, keep the lockfile "
        "true. Refuses when a database has only part of a squash applied."
    )
    requires_system_checks = []  # noqa: RUF012 - a repair command: no system checks

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_label", nargs="*", help="Only these apps (default: managed apps).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Print the plan and a diff; change nothing."
        )
        parser.add_argument(
            "--database",
            action="append",
            dest="databases",
            metavar="ALIAS",
            help="A database the squashes must be deployed on (repeat for several; default: "
            "'default').",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        workflow.run(
            workflow.Options(
                app_labels=list(options["app_label"]),
                dry_run=options["dry_run"],
                databases=options["databases"] or [DEFAULT_DB_ALIAS],
            ),
            self._print,
        )

    def _print(self, message: messages.Message) -> None:
        styles: dict[str, Callable[[str], str]] = {
            messages.HEADING: self.style.MIGRATE_HEADING,
            messages.NOTICE: self.style.NOTICE,
            messages.SUCCESS: self.style.SUCCESS,
        }
        if message.kind == messages.WARNING:
            self.stderr.write(self.style.WARNING(message.text))
        elif message.kind == messages.DIFF:
            self.stdout.write(message.text, ending="")
        else:
            self.stdout.write(styles.get(message.kind, str)(message.text))
