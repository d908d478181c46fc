"""Django's ``migrate`` with migtools' safety checks on apply.

- Before anything is applied, every checked migration of the plan must subclass
  ``CheckedMigration``, state ``is_post_deployment`` and use no plain ``RunSQL`` (the schema
  editor checks the rest while it runs).
- A PostgreSQL advisory lock makes concurrent ``migrate`` runs on one database wait for each
  other: two deploys never migrate at once.
- ``--pre-deploy`` applies every migration that is not post-deployment and whose dependencies
  are satisfied, defers post-deployment migrations and whatever depends on them, and lists
  them. Forwards only; nothing is faked.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.core.management.commands.migrate import Command as DjangoCommand
from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from django.db.models.signals import pre_migrate

from migtools.authoring.autodetector import MigrationAutodetector
from migtools.errors import UnknownAppError
from migtools.management.base import MigtoolsCommandMixin, check_database_alias
from migtools.safety import policy as enforcement
from migtools.safety.deploy import pre_deploy_plan
from migtools.safety.lock import migrate_lock


class Command(MigtoolsCommandMixin, DjangoCommand):
    help = DjangoCommand.help + " With migtools' safety checks; --pre-deploy (migtools)."
    # Must match makemigrations' (Django's check commands.E001).
    autodetector = MigrationAutodetector

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--pre-deploy",
            action="store_true",
            help="Apply every migration that is not post-deployment (and does not depend on "
            "one); list what was deferred. Run plain migrate after the deploy.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        database = options["database"]
        check_database_alias(database)
        if options.get("app_label"):
            self._app_label_or_error(options["app_label"])
        if not options["skip_checks"]:
            # Settings errors (migtools.E1xx) stop here, before the first SQL statement
            # (the advisory lock); Django's handle() then skips running them again.
            self.check(databases=[database])
            options = {**options, "skip_checks": True}
        connection = connections[database]
        with migrate_lock(connection, self.stderr.write):
            if options["pre_deploy"]:
                self._pre_deploy(connection, *args, **options)
                return
            checked: list[bool] = []

            def check(sender: Any, plan: Any = None, using: str = "", **kwargs: Any) -> None:
                if using == database and plan and not checked:
                    checked.append(True)
                    enforcement.check_plan(plan)

            pre_migrate.connect(check, dispatch_uid="migtools.migrate.check", weak=False)
            try:
                super().handle(*args, **options)
            finally:
                pre_migrate.disconnect(dispatch_uid="migtools.migrate.check")

    def _pre_deploy(self, connection: BaseDatabaseWrapper, *args: Any, **options: Any) -> None:
        if options["fake"] or options["fake_initial"] or options["prune"] or options["plan"]:
            raise CommandError(
                "--pre-deploy cannot be combined with --fake/--fake-initial/--prune/--plan.",
                returncode=2,
            )
        self.verbosity = options["verbosity"]
        self.interactive = options["interactive"]
        executor = MigrationExecutor(connection, self.migration_progress_callback)  # type: ignore[arg-type]
        executor.loader.check_consistent_history(connection)
        conflicts = executor.loader.detect_conflicts()
        if conflicts:
            names = "; ".join(f"{', '.join(v)} in {k}" for k, v in conflicts.items())
            raise CommandError(f"Conflicting migrations detected ({names}).")
        app_label = options.get("app_label")
        if app_label:
            self._app_label_or_error(app_label, executor)
            targets: list[tuple[str, str | None]] = [
                key for key in executor.loader.graph.leaf_nodes() if key[0] == app_label
            ]
        else:
            targets = list(executor.loader.graph.leaf_nodes())
        if options.get("migration_name"):
            raise CommandError(
                "--pre-deploy applies up to the leaves; to apply one migration give "
                "`migrate APP NAME` without --pre-deploy.",
                returncode=2,
            )
        plan, deferred = pre_deploy_plan(executor, targets)
        enforcement.check_plan(plan)
        pre_state = executor._create_project_state(with_applied_migrations=True)  # type: ignore[attr-defined]
        emit_pre_migrate_signal(
            self.verbosity,
            self.interactive,
            connection.alias,
            stdout=self.stdout,
            apps=pre_state.apps,
            plan=plan,
        )
        if self.verbosity >= 1:
            self.stdout.write(self.style.MIGRATE_HEADING("Running pre-deploy migrations:"))
        if not plan:
            if self.verbosity >= 1:
                self.stdout.write("  No migrations to apply before the deploy.")
            post_state = pre_state
        else:
            post_state = executor.migrate(
                targets, plan=plan, state=pre_state.clone(), fake=False, fake_initial=False
            )
        post_state.clear_delayed_apps_cache()
        emit_post_migrate_signal(
            self.verbosity,
            self.interactive,
            connection.alias,
            stdout=self.stdout,
            apps=post_state.apps,
            plan=plan,
        )
        if deferred:
            self.stdout.write(
                self.style.MIGRATE_HEADING(
                    "Deferred until after the deploy (run `manage.py migrate` then):"
                )
            )
            for migration, reason in deferred:
                self.stdout.write(f"  {migration.app_label}.{migration.name} ({reason})")

    def _app_label_or_error(
        self, app_label: str, executor: MigrationExecutor | None = None
    ) -> None:
        """An unknown app label, or one without migrations, is bad usage: exit 2."""
        from django.apps import apps

        try:
            apps.get_app_config(app_label)
        except LookupError:
            raise UnknownAppError(app_label) from None
        if executor is None:
            from migtools.graph import disk

            migrated = disk.locate(app_label)[1] is not None
        else:
            migrated = app_label in executor.loader.migrated_apps
        if not migrated:
            raise CommandError(f"App '{app_label}' does not have migrations.", returncode=2)
