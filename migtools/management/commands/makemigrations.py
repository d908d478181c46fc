"""Django's ``makemigrations``, plus the lockfile and the migtools file form.

After Django writes files (including ``--empty``, ``--merge``, ``--update``), each file of a
managed app becomes a ``CheckedMigration`` with an explicit ``is_post_deployment`` and the
lockfile is rewritten. ``--check`` exits 1 when model changes lack a migration and 2 when the
lockfile is stale. Without ``-n`` (``MIGTOOLS_REQUIRE_NAME``) a file that would get an
auto-generated name is refused with exit code 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser
from django.core.management.commands.makemigrations import Command as DjangoCommand
from django.db import DEFAULT_DB_ALIAS
from django.db.migrations import Migration
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.writer import MigrationWriter

from migtools import conf as mt_settings
from migtools import project
from migtools.authoring import removal, review, writer
from migtools.authoring.autodetector import MigrationAutodetector
from migtools.errors import ConflictError, LockfileError, StaleLockfileError, UsageError
from migtools.graph import checks as graph_checks
from migtools.graph import disk as graph
from migtools.graph import lockfile
from migtools.management.base import (
    MigtoolsCommandMixin,
    check_app_label,
    check_database_alias,
)
from migtools.verifier.run import lines_for_written

NAME_REQUIRED = (
    "Give the migration a name: python manage.py makemigrations {labels}-n <what_it_does>\n"
    "(MIGTOOLS_REQUIRE_NAME is on: names like 0042_add_order_status keep the history and the "
    "lockfile readable, and make a conflict on it say what collided.)"
)


class Command(MigtoolsCommandMixin, DjangoCommand):
    help = DjangoCommand.help + " Keeps migrations_lockfile.txt current (migtools)."
    # Writes RemoveField/DeleteModel in their two-phase form (state-equivalent).
    autodetector = MigrationAutodetector

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--finish-removal",
            metavar="APP",
            help="Write the DELETE phase of every two-phase removal of APP (SafeRemoveField/"
            "SafeDeleteModel MOVE_TO_PENDING) that is applied on --database and has none yet, "
            "in one post-deployment migration (migtools).",
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="The database that says which removals are deployed (--finish-removal) and "
            "whose tables and SQL the new migrations are judged with. Default: 'default'.",
        )

    def execute(self, *args: Any, **options: Any) -> str | None:
        if not options.get("check_changes"):
            return super().execute(*args, **options)
        # --check reports a stale lockfile itself, once: not first as a system check too.
        with graph_checks.lockfile_reported_by_command():
            return super().execute(*args, **options)

    def handle(self, *app_labels: str, **options: Any) -> None:
        self._attributes: dict[Path, dict[str, object]] = {}
        MigrationAutodetector.last = None  # this run's, once Django makes it
        self._loader: MigrationLoader | None = None  # --finish-removal's
        self._renames: dict[Path, Path] = {}
        check = bool(options["check_changes"])
        dry_run = bool(options["dry_run"]) or check
        self._checking = check
        managed = [c.label for c in project.managed_apps()]
        self._managed = managed
        self._database = str(options.get("database") or DEFAULT_DB_ALIAS)
        check_database_alias(self._database)
        before = writer.snapshot(managed)
        if options.get("finish_removal"):
            if app_labels or check or options["merge"] or options["empty"] or options["update"]:
                raise UsageError(
                    "--finish-removal APP takes no other app label and no --check, --merge, "
                    "--empty or --update."
                )
            if not self._finish_removal(str(options["finish_removal"]), options):
                return
        else:
            super().handle(*app_labels, **options)  # exits 1 itself on --check with changes
        if check:
            self._check_lockfile()
            return
        if dry_run:
            return
        self._finish(before, managed)

    # -- Django hooks -----------------------------------------------------------------

    def write_migration_files(
        self,
        changes: dict[str, list[Migration]],
        update_previous_migration_paths: dict[str, str] | None = None,
    ) -> None:
        if (
            not self.dry_run
            and not self.migration_name
            and not update_previous_migration_paths
            and mt_settings.require_name()
            and writer.needs_name(changes)
        ):
            labels = " ".join(sorted(changes))
            raise UsageError(NAME_REQUIRED.format(labels=f"{labels} " if labels else ""))
        paths: dict[tuple[str, str], Path] = {}
        attributes: dict[tuple[str, str], dict[str, object]] = {}
        for app_label, migrations in changes.items():
            for migration in migrations:
                node = (app_label, migration.name)
                paths[node] = Path(MigrationWriter(migration).path)
                attributes[node] = writer.attributes_of(migration)
                if "atomic" not in attributes[node] and writer.needs_non_atomic(
                    migration.operations
                ):
                    attributes[node]["atomic"] = False
        if not self._checking:
            self._review(changes, attributes, paths, update_previous_migration_paths or {})
        for (app_label, _name), path in paths.items():
            self._attributes[path] = attributes[app_label, _name]
            if update_previous_migration_paths:
                # --update keeps the file's name (Django would rename it).
                self._renames[path] = Path(update_previous_migration_paths[app_label])
        super().write_migration_files(changes, update_previous_migration_paths)

    def _review(
        self,
        changes: dict[str, list[Migration]],
        attributes: dict[tuple[str, str], dict[str, object]],
        paths: dict[tuple[str, str], Path],
        previous: dict[str, str],
    ) -> None:
        """Judge what is about to be written: the safe form, or a refusal before writing."""
        managed = set(self._managed)
        mine = {app: ms for app, ms in changes.items() if app in managed}
        if not any(m.operations for ms in mine.values() for m in ms):
            return  # --empty, --merge: nothing to judge
        replaced = [(app, Path(path).stem) for app, path in previous.items()]
        detector = MigrationAutodetector.last
        if detector is not None and detector.graph is not None:
            # The history Django already loaded and rendered: not read twice.
            graph, real_apps = detector.graph, detector.from_state.real_apps
            state = detector.from_state
        else:  # --finish-removal writes without the autodetector, on the loader it read
            loader = self._loader or MigrationLoader(None, ignore_no_migrations=True)
            graph, real_apps, state = loader.graph, loader.unmigrated_apps, None
        verdict = review.review(
            mine,
            graph,
            real_apps,
            attributes,
            paths,
            database=self._database,
            replaced=replaced,
            state=state,
        )
        verdict.raise_if_refused()
        for node in sorted(verdict.post_deployment):
            attributes[node]["is_post_deployment"] = True
            tables = ", ".join(verdict.large.get(node, [])) or "a large table"
            self.log(
                f"migtools: {node[0]}.{node[1]} builds an index on {tables}: written with "
                "is_post_deployment = True (`migrate --pre-deploy` defers it until after "
                "the deploy)."
            )

    # -- migtools ---------------------------------------------------------------------

    def _finish_removal(self, app_label: str, options: dict[str, Any]) -> bool:
        """Write the DELETE phase of the app's deployed pending removals (True: written)."""
        check_app_label(app_label)
        # What Django's handle() sets before writing.
        self.written_files: list[str] = []
        self.verbosity = options["verbosity"]
        self.interactive = options["interactive"]
        self.dry_run = bool(options["dry_run"])
        self.merge = self.empty = self.update = False
        self.include_header = options["include_header"]
        self.scriptable = options["scriptable"]
        self.migration_name = options["name"] or removal.DEFAULT_NAME
        if not self.migration_name.isidentifier():
            raise UsageError("The migration name must be a valid Python identifier.")
        loader = self._loader = removal.load(self._database)
        items = removal.pending(loader, app_label)
        ready = [item for item in items if item.deployed]
        waiting = [item for item in items if not item.deployed]
        if waiting:
            self.log(
                f"Not deployed on database {self._database!r} yet, left pending: "
                + ", ".join(item.describe() for item in waiting)
                + ". Apply (and deploy) them first."
            )
        if not ready:
            if not items:
                self.log(
                    f"No pending removal in {app_label}: every MOVE_TO_PENDING has its "
                    "DELETE phase."
                )
            return False
        new = removal.migration(loader, app_label, ready, options["name"])
        self.write_migration_files({app_label: [new]})
        return not self.dry_run

    def _finish(self, before: writer.Snapshot, managed: list[str]) -> None:
        for new, previous in self._renames.items():
            if new != previous and new.exists() and not previous.exists():
                os.replace(new, previous)
                self._attributes[previous] = self._attributes.pop(new)
                self.log(
                    f"Wrote the updated migration as {previous.name}: migtools keeps the name "
                    "on --update."
                )
        written = writer.written_since(before, managed)
        for path in written:
            writer.convert_file(path, self._attributes.get(path))
        if written:
            self.refresh_lockfile()
            for line in lines_for_written(written):
                self.stderr.write(self.style.WARNING(line))

    def _check_lockfile(self) -> None:
        path = project.lockfile_path()
        disk = graph.load()
        self.warn_all(disk.warnings)
        try:
            mismatches = lockfile.check(path, disk)
        except (LockfileError, ConflictError) as exc:
            # A missing, unreadable or conflicted lockfile is stale too (exit 2).
            raise StaleLockfileError(str(exc)) from None
        if mismatches:
            wrong = "; ".join(mismatch.describe() for mismatch in mismatches)
            raise StaleLockfileError(
                f"{self.get_relative_path(str(path))} is stale ({wrong}): run 'python "
                "manage.py makemigrations' or 'python manage.py migrations_lockfile'."
            )
