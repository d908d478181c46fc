"""``manage.py update_migration [MIGRATION] [APP_LABEL]``: move your branch's migrations after
main's, rewrite what names them, fix the lockfile, stage it all, and say what git step is next."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections

from migtools import project
from migtools.errors import MigtoolsError
from migtools.gitrepo import GitRepo
from migtools.management.base import MigtoolsCommandMixin
from migtools.renamer import plan as renumber


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
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="The database to look for applied migrations in (default: 'default').",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._handle(options)
        except MigtoolsError as exc:
            raise CommandError(str(exc), returncode=exc.returncode) from exc

    def _handle(self, options: dict[str, Any]) -> None:
        migration: str | None = options["migration"]
        app_label: str | None = options["app_label"]
        if app_label is not None:
            project.app_config(app_label)
        repo = GitRepo.find(project.lockfile_path())
        inputs = renumber.gather(repo)
        plan = renumber.plan(inputs, migration, app_label)
        if plan.empty:
            if migration is not None:
                self.stdout.write(
                    f"'{migration}' already comes after the latest migration on {inputs.main}: "
                    "nothing to do."
                )
            else:
                self.stdout.write("No migration conflicts to resolve.")
            return
        self._print_plan(plan, inputs)

        connection = connections[options["database"]]
        applied = renumber.applied_moved(plan, connection)
        if applied is None:
            self.stderr.write(
                self.style.WARNING(
                    f"Database '{options['database']}' is unreachable: not checked whether "
                    "the moved migrations are applied there. If they are, roll them back "
                    "(migrate APP <migration before them>) before you migrate again."
                )
            )
        steps: list[tuple[Any, bool]] = []
        if applied:
            if not options["update_applied"]:
                raise renumber.refuse_applied(applied)
            steps = renumber.rollback_plan(plan, connection)

        if options["dry_run"]:
            for migration_obj, _backwards in steps:
                self.stdout.write(f"  Would unapply {migration_obj.app_label}.{migration_obj.name}")
            diff = plan.diff()
            if diff:
                self.stdout.write(diff, ending="")
            self.stdout.write(self.style.NOTICE("Dry run: nothing was changed."))
            return

        if steps:
            self.stdout.write(self.style.MIGRATE_HEADING("Rolling back applied migrations:"))
            for migration_obj, _backwards in steps:
                self.stdout.write(f"  Unapplying {migration_obj.app_label}.{migration_obj.name}")
            renumber.roll_back(steps, connection)

        renumber.apply(plan, repo)
        problems = renumber.verify(plan)
        if problems:
            raise CommandError(
                "The renames were written, but the result does not check out:\n"
                + "\n".join(f"  {p}" for p in problems)
            )
        self.stdout.write(
            self.style.SUCCESS(
                "Done: every managed app has one leaf migration and the lockfile is up to date."
            )
        )
        if steps:
            self.stdout.write("Run 'python manage.py migrate' to apply them in the new order.")
        next_step = repo.next_step()
        if next_step is not None:
            self.stdout.write(f"Next: {self.style.MIGRATE_LABEL(next_step)}")
        else:
            self.stdout.write("Next: review the staged changes and commit them.")

    def _print_plan(self, plan: renumber.Plan, inputs: renumber.Inputs) -> None:
        style = self.style
        for fix in plan.map_fixes:
            self.stdout.write(f"Fixed a reference in {fix}")
        for app in plan.apps:
            self.stdout.write(
                style.MIGRATE_HEADING(
                    f"Moving {app.app_label}'s migrations after {app.main_leaf} "
                    f"(the latest on {inputs.main}):"
                )
            )
            new_names = dict(zip(app.chain, app.new_names, strict=True))
            for index, (old, new) in enumerate(new_names.items()):
                note = ""
                if old in app.linearised:
                    note = f" (now after {new_names[app.linearised[old]]} instead of beside it)"
                elif index == 0 and old == new:
                    note = f" (name kept, now after {app.main_leaf})"
                shown = old if old == new else f"{old} -> {style.MIGRATE_LABEL(new)}"
                self.stdout.write(f"  {shown}{note}")
        moved = {r.old_path for r in plan.renames}
        edited = [
            c
            for c in plan.changes
            if c.path != plan.lockfile_path
            and c.stage
            and c.old_text != c.new_text
            and c.source not in moved
        ]
        if edited:
            self.stdout.write(style.MIGRATE_HEADING("Rewriting references in:"))
            for change in edited:
                self.stdout.write(f"  {plan.relative(change.path)}")
        tests = [
            c
            for c in plan.changes
            if c.moved and not any(r.old_path == c.source for r in plan.renames)
        ]
        for change in tests:
            self.stdout.write(
                f"Renaming {plan.relative(change.source)} -> {plan.relative(change.path)}"
            )
        if any(c.path == plan.lockfile_path for c in plan.changes):
            self.stdout.write(f"Updating {plan.relative(plan.lockfile_path)}")
