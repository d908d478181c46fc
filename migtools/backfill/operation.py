"""``RunBackfill`` and ``EnsureBackfilled``: large data migrations in resumable batches.

``RunBackfill(model, function, *, filter=None, batch_size=1000, reverse=None, pause=0,
name=None, batch_time=None)`` calls ``function(apps, batch)`` once per primary-key range, each
batch in its own short transaction under the lock and statement timeouts, with its progress
committed in the same transaction. It needs ``atomic = False`` and belongs in a post-deployment
migration. ``reverse`` (same signature) runs batch by batch when the migration is unapplied;
without it, unapplying only forgets the progress (the rows keep their values).

``EnsureBackfilled(app_label, migration_name)`` in a later migration refuses to pass until every
backfill of that migration is done (the tasks runner finishes them on workers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.db.migrations.operations.base import Operation

from migtools.backfill import progress, runners
from migtools.errors import BackfillError
from migtools.safety import deploy

if TYPE_CHECKING:
    from django.apps.registry import Apps
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations.migration import Migration
    from django.db.migrations.state import ProjectState
    from django.db.models import Q


def _migration_name(function: Callable[..., Any], schema_editor: Any) -> str | None:
    migration = getattr(schema_editor, "migtools_migration", None)
    if migration is not None:
        return str(migration.name)
    module = getattr(function, "__module__", "") or ""
    if ".migrations." in f".{module}":
        return module.rsplit(".", 1)[-1]
    return None


class RunBackfill(Operation):
    """Update every row of a (large) table in resumable, throttled primary-key batches."""

    reduces_to_sql = False
    reversible = True
    atomic = False
    migtools_backfill = True  # how runners.locate() recognises it without importing this module

    def __init__(
        self,
        model: str,
        function: Callable[[Apps, Any], Any],
        *,
        filter: Q | None = None,
        batch_size: int = 1000,
        reverse: Callable[[Apps, Any], Any] | None = None,
        pause: float = 0,
        name: str | None = None,
        batch_time: float | None = None,
    ) -> None:
        if not isinstance(model, str) or model.count(".") != 1:
            raise BackfillError(
                f"RunBackfill(model={model!r}): model is 'app_label.ModelName' (the "
                "historical model)."
            )
        if not callable(function) or (reverse is not None and not callable(reverse)):
            raise BackfillError("RunBackfill: function (and reverse) must be callables.")
        if int(batch_size) < 1:
            raise BackfillError(f"RunBackfill: batch_size must be at least 1, not {batch_size!r}.")
        if pause < 0 or (batch_time is not None and batch_time <= 0):
            raise BackfillError("RunBackfill: pause must be >= 0 and batch_time > 0 seconds.")
        self.model = model
        self.function = function
        self.filter = filter
        self.batch_size = int(batch_size)
        self.reverse = reverse
        self.pause = pause
        self.name = name
        self.batch_time = batch_time

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs: dict[str, Any] = {}
        for key, default in (
            ("filter", None),
            ("batch_size", 1000),
            ("reverse", None),
            ("pause", 0),
            ("name", None),
            ("batch_time", None),
        ):
            value = getattr(self, key)
            if value != default:
                kwargs[key] = value
        return (self.__class__.__name__, [self.model, self.function], kwargs)

    def describe(self) -> str:
        return f"Backfill {self.model} in batches of {self.batch_size}"

    @property
    def migration_name_fragment(self) -> str:
        return f"backfill_{self.model.split('.')[1].lower()}"

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass

    def backfill_name(self, app_label: str, migration_name: str) -> str:
        return self.name or f"{app_label}.{migration_name}"

    # -- running ----------------------------------------------------------------------------

    def job(
        self,
        app_label: str,
        migration_name: str,
        apps: Apps,
        alias: str,
        function: Callable[[Apps, Any], Any] | None = None,
        suffix: str = "",
    ) -> runners.Job:
        app, model_name = self.model.split(".")
        model = apps.get_model(app, model_name)
        return runners.Job(
            name=self.backfill_name(app_label, migration_name) + suffix,
            app_label=app_label,
            migration=migration_name,
            model=model,
            apps=apps,
            function=function or self.function,
            filter=self.filter,
            batch_size=self.batch_size,
            pause=float(self.pause),
            batch_time=self.batch_time,
            alias=alias,
        )

    def _prepare(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, apps: Apps, verb: str
    ) -> runners.Job | None:
        where = f"RunBackfill({self.model})"
        migration_name = _migration_name(self.function, schema_editor)
        if migration_name is None:
            raise BackfillError(
                f"{where}: cannot tell which migration runs it: subclass "
                "migtools.CheckedMigration, or define the function in the migration file."
            )
        where = f"{app_label}.{migration_name}: {where}"
        connection = schema_editor.connection
        if getattr(schema_editor, "atomic_migration", False) or connection.in_atomic_block:
            raise BackfillError(
                f"{where} cannot {verb} inside a transaction: set `atomic = False` on the "
                "migration (each batch commits on its own, so progress survives a kill)."
            )
        if connection.vendor != "postgresql":
            raise BackfillError(f"{where} needs PostgreSQL (alias {connection.alias!r}).")
        app, model_name = self.model.split(".")
        model = apps.get_model(app, model_name)
        if not self.allow_migrate_model(connection.alias, model):
            return None
        migration = getattr(schema_editor, "migtools_migration", None)
        if migration is not None:
            names = [
                op.backfill_name(app_label, migration_name)
                for op in migration.operations
                if isinstance(op, RunBackfill)
            ]
            if len(names) != len(set(names)):
                raise BackfillError(
                    f"{app_label}.{migration_name}: several RunBackfill operations share the "
                    "name "
                    f"{self.backfill_name(app_label, migration_name)!r}: give each a name=."
                )
        from migtools.backfill import batches

        batches.keys_of(model, where)  # refuse composite / unsupported keys before any write
        return self.job(app_label, migration_name, apps, connection.alias)

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        job = self._prepare(app_label, schema_editor, from_state.apps, "run")
        if job is None:
            return
        if runners.runner() == "tasks":
            from migtools.backfill import tasks  # needs django.tasks or the backport

            # Under migrate, the tasks are enqueued once the plan is applied: the tasks
            # backend's own tables may be created by a later migration of the same plan.
            tasks.enqueue(job, defer=deploy.is_applying(schema_editor.connection))
        else:
            runners.run_inline(job)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        job = self._prepare(app_label, schema_editor, to_state.apps, "be unapplied")
        if job is None:
            return
        connection = schema_editor.connection
        if self.reverse is not None:
            back = self.job(
                job.app_label,
                job.migration,
                to_state.apps,
                job.alias,
                self.reverse,
                runners.REVERSE,
            )
            progress.forget(connection, back.name)
            runners.run_inline(back)
            progress.forget(connection, back.name)
        progress.forget(connection, job.name)


class EnsureBackfilled(Operation):
    """Refuse to go on until every ``RunBackfill`` of ``app_label.migration_name`` is done."""

    reduces_to_sql = False
    reversible = True

    def __init__(self, app_label: str, migration_name: str) -> None:
        self.app_label = app_label
        self.migration_name = migration_name

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__name__, [self.app_label, self.migration_name], {})

    def describe(self) -> str:
        return f"Ensure the backfills of {self.app_label}.{self.migration_name} are done"

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        connection = schema_editor.connection
        target = f"{self.app_label}.{self.migration_name}"
        migration = _load(self.app_label, self.migration_name)
        if migration is None:
            raise BackfillError(f"EnsureBackfilled({target}): no such migration.")
        names = [
            op.backfill_name(self.app_label, self.migration_name)
            for op in migration.operations
            if isinstance(op, RunBackfill)
        ]
        if not names:
            raise BackfillError(f"EnsureBackfilled({target}): that migration has no RunBackfill.")
        records = {b.name: b for b in progress.all_backfills(connection)}
        waiting = []
        for name in names:
            b = records.get(name)
            if b is None:
                waiting.append(f"{name} has not started")
            elif b.state != progress.DONE:
                total = f" of ~{b.total:,}" if b.total else ""
                error = f"; last error: {b.last_error}" if b.last_error else ""
                waiting.append(f"{name} is {b.state} ({b.rows:,}{total} rows{error})")
        if waiting:
            raise BackfillError(
                f"{app_label}: EnsureBackfilled({target}) refuses to go on: "
                + "; ".join(waiting)
                + ". Wait for the workers, or finish it here: "
                f"`python manage.py backfills --run {names[0]}`."
            )

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        pass


def _load(app_label: str, migration_name: str) -> Migration | None:
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    found: Migration | None = loader.graph.nodes.get((app_label, migration_name))
    return found
