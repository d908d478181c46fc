"""Django's ``migrate`` with migtools' safety checks on apply.

- Before anything is applied, the preflight (``migtools.safety.preflight``) judges the whole
  plan with the rule engine in one pass; any error-level finding about the database refuses
  it (exit 1, every finding with file:line, why and the recipe; nothing applied). ``--check``
  and ``--plan`` show the findings too. The schema editor judges each migration again as it
  runs (a backstop for other ways in).
- A PostgreSQL advisory lock makes concurrent ``migrate`` runs on one database wait for each
  other: two deploys never migrate at once.
- ``--pre-deploy`` applies every migration that is not post-deployment and whose dependencies
  are satisfied, defers post-deployment migrations and whatever depends on them, and lists
  them. Forwards only; nothing is faked.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from django.core.management.base import CommandParser
from django.core.management.commands.migrate import Command as DjangoCommand
from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import AmbiguityError
from django.db.models.signals import pre_migrate

from migtools import conf
from migtools.authoring.autodetector import MigrationAutodetector
from migtools.errors import BackfillError, ConflictError, FindingsError, UsageError
from migtools.management.base import MigtoolsCommandMixin, check_app_label, check_database_alias
from migtools.safety import deploy
from migtools.safety._django import applied_state, executors_recorded
from migtools.safety.deploy import pre_deploy_plan
from migtools.safety.lock import migrate_lock
from migtools.safety.preflight import Preflight, judge_plan, refuse_irreversible


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
            check_app_label(options["app_label"])
        # System checks ran once already, in execute() (settings errors, migtools.E1xx, stop
        # there, before the first SQL statement); Django's handle() must not run them again.
        options = {**options, "skip_checks": True}
        connection = connections[database]
        with migrate_lock(connection, self.stderr.write):
            if options["pre_deploy"]:
                self._pre_deploy(connection, *args, **options)
                return
            if options["plan"] or options["check_unapplied"]:
                self._show_findings(connection, options)
                super().handle(*args, **options)
                return
            with ExitStack() as stack:
                judged: list[bool] = []
                # Django's command builds one executor (the graph, the applied migrations):
                # the preflight judges its plan with the same loader.
                executors = stack.enter_context(executors_recorded())

                def loader() -> Any:
                    if executors:
                        return executors[0].loader
                    return MigrationExecutor(connection).loader

                def preflight(
                    sender: Any, plan: Any = None, using: str = "", **kwargs: Any
                ) -> None:
                    if using != database or judged or options["fake"]:
                        return
                    judged.append(True)
                    # The loader is asked only when the plan holds a checked migration.
                    stack.enter_context(self._preflight(connection, loader, plan or []))

                pre_migrate.connect(
                    preflight, dispatch_uid="migtools.migrate.preflight", weak=False
                )
                stack.callback(pre_migrate.disconnect, dispatch_uid="migtools.migrate.preflight")
                super().handle(*args, **options)

    def _preflight(self, connection: BaseDatabaseWrapper, loader: Any, plan: Any) -> Any:
        """Judge the plan; refuse it, or return the context the plan is applied in."""
        refuse_irreversible(plan)
        result = judge_plan(connection, loader, plan)
        self._print_warnings(result)
        result.raise_if_refused()
        stack = ExitStack()
        stack.push(self._enqueue_backfills_after(connection.alias))
        stack.enter_context(deploy.applying(connection, result.new_tables))
        return stack

    def _enqueue_backfills_after(self, alias: str) -> Any:
        """Once the plan is applied (or stopped): the tasks of the backfills it recorded (the
        tasks backend's tables exist only now if the same plan created them)."""

        def enqueue(exc_type: Any, exc: Any, tb: Any) -> bool:
            if conf.backfill_runner() != "tasks":
                return False
            from migtools.backfill import tasks

            try:
                names = tasks.enqueue_recorded(alias)
            except BackfillError as error:
                if exc_type is None:
                    raise
                self.stderr.write(self.style.WARNING(f"migtools: {error}"))
                return False
            if names and self.verbosity >= 1:
                self.stdout.write(
                    f"  Enqueued the tasks of backfill(s) {', '.join(names)} (plan applied)."
                )
            return False

        return enqueue

    def _print_warnings(self, result: Preflight) -> None:
        for f in result.warnings:
            self.stderr.write(
                self.style.WARNING(
                    f"migtools: {f.where()}: warning: [{f.rule_id}] {' '.join(f.message.split())}"
                )
            )

    def _show_findings(self, connection: BaseDatabaseWrapper, options: dict[str, Any]) -> None:
        """--plan / --check: the preflight's findings on the plan, without applying."""
        executor = MigrationExecutor(connection)
        targets = self._targets(executor, options)
        if targets is None:
            return
        result = judge_plan(connection, executor.loader, executor.migration_plan(targets))
        for f in result.findings:
            style = self.style.ERROR if f.refuses else self.style.WARNING
            self.stdout.write(
                style(
                    f"migtools: {f.where()}: {f.level}: [{f.rule_id}] {' '.join(f.message.split())}"
                )
            )
        if result.refusals:
            self.stdout.write(
                self.style.ERROR(
                    f"migtools: migrate would refuse this plan ({len(result.refusals)} "
                    "error-level finding(s))."
                )
            )
            if options["check_unapplied"]:
                raise FindingsError("migrate would refuse the plan.")

    def _targets(
        self, executor: MigrationExecutor, options: dict[str, Any]
    ) -> list[tuple[str, str | None]] | None:
        """The targets Django's migrate computes from APP [NAME] (None: Django reports the
        bad input itself)."""
        app_label, name = options.get("app_label"), options.get("migration_name")
        graph = executor.loader.graph
        if not app_label:
            return list(graph.leaf_nodes())
        if app_label not in executor.loader.migrated_apps:
            return None
        if not name:
            return [key for key in graph.leaf_nodes() if key[0] == app_label]
        if name == "zero":
            return [(app_label, None)]
        try:
            migration = executor.loader.get_migration_by_prefix(app_label, name)
        except (AmbiguityError, KeyError):
            return None
        return [(app_label, migration.name)]

    def _pre_deploy(self, connection: BaseDatabaseWrapper, *args: Any, **options: Any) -> None:
        if options["fake"] or options["fake_initial"] or options["prune"] or options["plan"]:
            raise UsageError(
                "--pre-deploy cannot be combined with --fake/--fake-initial/--prune/--plan."
            )
        self.verbosity = options["verbosity"]
        self.interactive = options["interactive"]
        executor = MigrationExecutor(connection, self.migration_progress_callback)  # type: ignore[arg-type]
        executor.loader.check_consistent_history(connection)
        conflicts = executor.loader.detect_conflicts()
        if conflicts:
            raise ConflictError(conflicts)
        app_label = options.get("app_label")
        if app_label:
            check_app_label(app_label, executor.loader.migrated_apps)
            targets: list[tuple[str, str | None]] = [
                key for key in executor.loader.graph.leaf_nodes() if key[0] == app_label
            ]
        else:
            targets = list(executor.loader.graph.leaf_nodes())
        if options.get("migration_name"):
            raise UsageError(
                "--pre-deploy applies up to the leaves; to apply one migration give "
                "`migrate APP NAME` without --pre-deploy."
            )
        plan, deferred = pre_deploy_plan(executor, targets)
        with self._preflight(connection, executor.loader, plan):
            self._apply_pre_deploy(connection, executor, targets, plan, deferred)

    def _apply_pre_deploy(
        self,
        connection: BaseDatabaseWrapper,
        executor: MigrationExecutor,
        targets: list[tuple[str, str | None]],
        plan: list[tuple[Any, bool]],
        deferred: list[tuple[Any, str]],
    ) -> None:
        pre_state = applied_state(executor)
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
