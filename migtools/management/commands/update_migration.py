"""``manage.py update_migration [MIGRATION] [APP_LABEL]``: move your branch's migrations after
main's, rewrite what names them, fix the lockfile, stage it all, and say what git step is next.

Thin: the options go to :func:`migtools.renamer.workflow.run`, whose messages are printed here;
errors become exit codes in :class:`~migtools.management.base.MigtoolsCommandMixin`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS

from migtools.management.base import MigtoolsCommandMixin
from migtools.renamer import workflow


class Command(MigtoolsCommandMixin, BaseCommand):
    help = (
        "Resolve migration conflicts after a merge or rebase: renumber your branch's migrations "
        "(the whole chain) after the latest migration on main, rewrite every reference to them, "
        "and fix the lockfile. With no arguments, resolve every conflict found."
    )
    requires_system_checks = []  # noqa: RUF012 - a repair command: no system checks

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "migration",
            nargs="?",
            help="The migration to move: full name, number or unique substring.",
        )
        parser.add_argument(
            "app_label", nargs="?", help="The app of MIGRATION, when the match is not unique."
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print the plan and a unified diff; change nothing.",
        )
        parser.add_argument(
            "--update-applied",
            action="store_true",
            help="Roll back moved migrations that the database records as applied (their "
            "reverse operations, with the current graph) before renaming them.",
        )
        parser.add_argument(
            "--allow-dirty",
            action="store_true",
            help="Rewrite files holding uncommitted edits of your own; those edits stay unstaged.",
        )
        parser.add_argument(
            "--database",
            default=None,
            help="The database to look for applied migrations in, and to roll them back in "
            "under --update-applied (default: look in every alias; roll back in 'default').",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        workflow.run(
            workflow.Options(
                migration=options["migration"],
                app_label=options["app_label"],
                dry_run=options["dry_run"],
                update_applied=options["update_applied"],
                allow_dirty=options["allow_dirty"],
                database=options["database"] or DEFAULT_DB_ALIAS,
                database_given=options["database"] is not None,
            ),
            self._print,
        )

    def _print(self, message: workflow.Message) -> None:
        styles: dict[str, Callable[[str], str]] = {
            workflow.HEADING: self.style.MIGRATE_HEADING,
            workflow.NOTICE: self.style.NOTICE,
            workflow.SUCCESS: self.style.SUCCESS,
        }
        if message.kind == workflow.WARNING:
            self.stderr.write(self.style.WARNING(message.text))
        elif message.kind == workflow.DIFF:
            self.stdout.write(message.text, ending="")
        else:
            self.stdout.write(styles.get(message.kind, str)(message.text))
