"""Two-phase deletion: ``SafeRemoveField`` / ``SafeDeleteModel`` and ``DeletionAction``.

A field or model is removed in two deploys:

1. ``DeletionAction.MOVE_TO_PENDING``: state only, no SQL. The model/field leaves the migration
   state (the code stops using it) while the column/table stays, so the old code keeps working
   during the deploy. Refused when the old code's writes would break (a NOT NULL column without
   ``db_default``) or when a foreign key constraint would remain.
2. ``DeletionAction.DELETE`` (a later migration): drops the column/table under the timeouts.
   It carries what it needs: the table and column follow from the names (``db_table=`` and
   ``field=`` override them and make the operation reversible). It must follow a
   MOVE_TO_PENDING of the same item in an earlier migration of the graph.

A refusal is raised from ``database_forwards``; the rule engine (``migtools.rules.engine``)
turns it into a finding of the operation, so the verifier reports it and ``migrate`` refuses
before anything runs.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings as django_settings
from django.db import router
from django.db.migrations.exceptions import IrreversibleError
from django.db.migrations.operations import DeleteModel, RemoveField
from django.db.migrations.operations.base import Operation

from migtools import conf as mt_settings
from migtools.errors import PendingDeletionError, UnroutedTableError, UnsafeMigrationError

if TYPE_CHECKING:
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations.migration import Migration
    from django.db.migrations.state import ProjectState
    from django.db.models import Field


class DeletionAction(enum.Enum):
    # Migration files name the public path; the writer serializes by __module__.
    __module__ = "migtools.operations"
    MOVE_TO_PENDING = "move_to_pending"
    DELETE = "delete"

    def __repr__(self) -> str:  # what the migration writer renders
        return f"DeletionAction.{self.name}"


def _editor_migration(schema_editor: Any) -> Migration | None:
    return getattr(schema_editor, "migtools_migration", None)


def _paired(migration: Migration | None, match: Any) -> bool | None:
    """True when an ancestor of ``migration`` (not itself) holds a matching MOVE_TO_PENDING,
    False when none does, None when the migration is unknown (e.g. applied by hand)."""
    if migration is None:
        return None
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    key = (migration.app_label, migration.name)
    if key not in loader.graph.nodes:
        return None
    for ancestor in loader.graph.forwards_plan(key):
        if ancestor == key:
            continue
        for op in loader.get_migration(*ancestor).operations:
            if match(op, ancestor[0]):
                return True
    return False


class _TwoPhase(Operation):
    """What both two-phase deletions share: MOVE_TO_PENDING changes only the state, DELETE
    only the database, and the optimizer never merges either phase away."""

    deletion_action: DeletionAction

    @property
    def reduces_to_sql(self) -> bool:  # type: ignore[override]
        return self.deletion_action is DeletionAction.DELETE

    def reduce(self, operation: Operation, app_label: str) -> Any:
        return False  # never merged away by the optimizer: both phases must stay visible

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        if self.deletion_action is DeletionAction.MOVE_TO_PENDING:
            super().state_forwards(app_label, state)

    def _check_paired(self, app_label: str, schema_editor: Any) -> None:
        """DELETE needs a MOVE_TO_PENDING of the same item in an earlier migration."""

        def match(op: Operation, op_app: str) -> bool:
            return (
                type(op) is type(self)
                and op_app == app_label
                and op.deletion_action is DeletionAction.MOVE_TO_PENDING
                and self._same_item(op)
            )

        if _paired(_editor_migration(schema_editor), match) is False:
            name = type(self).__name__
            raise PendingDeletionError(
                f"{app_label}.{self._item()}: {name}(DELETE) without a {name}(MOVE_TO_PENDING) "
                f"of the same {self._kind()} in an earlier migration."
            )

    def _same_item(self, other: Operation) -> bool:
        raise NotImplementedError

    def _item(self) -> str:
        raise NotImplementedError

    def _kind(self) -> str:
        raise NotImplementedError


class SafeRemoveField(_TwoPhase, RemoveField):
    """Remove a field in two phases (see the module docstring)."""

    # Migration files name the public path; the writer serializes by __module__.
    __module__ = "migtools.operations"

    def __init__(
        self,
        model_name: str,
        name: str,
        deletion_action: DeletionAction = DeletionAction.MOVE_TO_PENDING,
        field: Field[Any, Any] | None = None,
    ) -> None:
        super().__init__(model_name, name)
        self.deletion_action = deletion_action
        self.field = field

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "model_name": self.model_name,
            "name": self.name,
            "deletion_action": self.deletion_action,
        }
        if self.field is not None:
            kwargs["field"] = self.field
        return (self.__class__.__name__, [], kwargs)

    def describe(self) -> str:
        return f"{self.deletion_action.name} field {self.name} from {self.model_name}"

    @property
    def reversible(self) -> bool:  # type: ignore[override]
        """A DELETE re-creates the column only from ``field=``."""
        return self.deletion_action is not DeletionAction.DELETE or self.field is not None

    def migtools_irreversible(self, app_label: str) -> str:
        """Why unapplying it is impossible, and the fix (``migrate``'s one refusal line)."""
        return (
            f"its SafeRemoveField(DELETE) of {app_label}.{self.model_name}.{self.name} has "
            "no field=, so the column cannot be re-created. Add field=<the field as it "
            "was> to that operation (`makemigrations --finish-removal` writes it)"
        )

    @property
    def migration_name_fragment(self) -> str:
        return f"safe_remove_{self.model_name_lower}_{self.name_lower}"

    def _same_item(self, other: Operation) -> bool:
        return bool(
            other.model_name_lower == self.model_name_lower  # type: ignore[attr-defined]
            and other.name_lower == self.name_lower  # type: ignore[attr-defined]
        )

    def _item(self) -> str:
        return f"{self.model_name}.{self.name}"

    def _kind(self) -> str:
        return "field"

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if self.deletion_action is DeletionAction.MOVE_TO_PENDING:
            self._check_pending(app_label, from_state)
            return
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if self.name in {f.name for f in model._meta.get_fields()}:
            raise PendingDeletionError(
                f"{app_label}.{self.model_name}.{self.name}: SafeRemoveField(DELETE) needs the "
                "field removed from the state first: an earlier migration with "
                "SafeRemoveField(..., deletion_action=DeletionAction.MOVE_TO_PENDING)."
            )
        self._check_paired(app_label, schema_editor)
        column = self.field.get_attname_column()[1] if self.field is not None else None
        if column is None and self.field is not None:
            column = self.name
        column = column or self.name
        table = model._meta.db_table
        qn = schema_editor.quote_name
        schema_editor.execute(f"ALTER TABLE {qn(table)} DROP COLUMN IF EXISTS {qn(column)}")

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if self.deletion_action is DeletionAction.MOVE_TO_PENDING:
            return  # the column never left the database
        if self.field is None:
            raise IrreversibleError(
                f"SafeRemoveField(DELETE) of {app_label}.{self.model_name}.{self.name} is "
                "irreversible without field=: pass the removed field (makemigrations writes it)."
            )
        state = to_state.clone()
        state.add_field(app_label, self.model_name_lower, self.name, self.field.clone(), True)
        model = state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_field(model, model._meta.get_field(self.name))

    def _check_pending(self, app_label: str, from_state: ProjectState) -> None:
        model_state = from_state.models[app_label, self.model_name_lower]
        field = model_state.fields[self.name]
        where = f"{app_label}.{self.model_name}.{self.name}"
        if field.many_to_many:
            raise UnsafeMigrationError(
                "drop-column",
                where,
                "SafeRemoveField does not handle many-to-many fields (their table would stay "
                "behind with no model)",
                recipe="  1. Replace the ManyToManyField by an explicit through model, then "
                "remove that model with SafeDeleteModel.",
            )
        if not field.null and not field.has_db_default():
            raise UnsafeMigrationError(
                "not-null-without-db-default",
                where,
                "MOVE_TO_PENDING of a NOT NULL field without db_default: once the code stops "
                "writing it, every INSERT fails",
                recipe="  1. In an earlier migration (or just before this operation), make the "
                "field nullable: AlterField(..., null=True), or give it db_default=.\n"
                "  2. Then SafeRemoveField(..., deletion_action=DeletionAction.MOVE_TO_PENDING).",
            )
        if getattr(field, "remote_field", None) is not None and getattr(
            field, "db_constraint", False
        ):
            raise UnsafeMigrationError(
                "drop-column",
                where,
                "MOVE_TO_PENDING of a foreign key that still has its constraint: deleting the "
                "referenced rows would fail once the code no longer knows the field",
                recipe="  1. Drop the constraint first: AlterField(..., db_constraint=False, "
                "null=True).\n  2. Then SafeRemoveField(..., MOVE_TO_PENDING).",
            )


def _default_table(app_label: str, name: str) -> str:
    return f"{app_label}_{name.lower()}"


class SafeDeleteModel(_TwoPhase, DeleteModel):
    """Delete a model in two phases (see the module docstring)."""

    # Migration files name the public path; the writer serializes by __module__.
    __module__ = "migtools.operations"

    def __init__(
        self,
        name: str,
        deletion_action: DeletionAction = DeletionAction.MOVE_TO_PENDING,
        db_table: str | None = None,
        fields: Sequence[tuple[str, Field[Any, Any]]] | None = None,
    ) -> None:
        super().__init__(name)
        self.deletion_action = deletion_action
        self.db_table = db_table
        self.fields = list(fields) if fields is not None else None

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs: dict[str, Any] = {"name": self.name, "deletion_action": self.deletion_action}
        if self.db_table is not None:
            kwargs["db_table"] = self.db_table
        if self.fields is not None:
            kwargs["fields"] = self.fields
        return (self.__class__.__name__, [], kwargs)

    def describe(self) -> str:
        return f"{self.deletion_action.name} model {self.name}"

    @property
    def reversible(self) -> bool:  # type: ignore[override]
        """A DELETE re-creates the table only from ``fields=``."""
        return self.deletion_action is not DeletionAction.DELETE or self.fields is not None

    def migtools_irreversible(self, app_label: str) -> str:
        """Why unapplying it is impossible, and the fix (``migrate``'s one refusal line)."""
        return (
            f"its SafeDeleteModel(DELETE) of {app_label}.{self.name} has no fields=, so the "
            "table cannot be re-created. Add fields=[...] (the model's fields as they were) "
            "to that operation (`makemigrations --finish-removal` writes them)"
        )

    @property
    def migration_name_fragment(self) -> str:
        return f"safe_delete_{self.name_lower}"

    def references_model(self, name: str, app_label: str) -> bool:
        return bool(name.lower() == self.name_lower)

    def _same_item(self, other: Operation) -> bool:
        return bool(other.name_lower == self.name_lower)  # type: ignore[attr-defined]

    def _item(self) -> str:
        return str(self.name)

    def _kind(self) -> str:
        return "model"

    def table(self, app_label: str) -> str:
        return self.db_table or _default_table(app_label, self.name)

    def migtools_routed(self, alias: str, app_label: str) -> bool:
        """Whether this operation runs on ``alias`` (``migtools.rules.routing``): the DELETE
        phase on the database holding the table (``resolve_database``: raises
        ``UnroutedTableError`` when none can be told, so the preflight fails before anything
        runs); MOVE_TO_PENDING changes only the state and is judged where the model lives."""
        if self.deletion_action is DeletionAction.DELETE:
            return resolve_database(self.table(app_label), app_label, self.name_lower) == alias
        return bool(router.allow_migrate(alias, app_label, model_name=self.name_lower))

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if self.deletion_action is DeletionAction.MOVE_TO_PENDING:
            self._check_pending(app_label, from_state)
            return
        if (app_label, self.name_lower) in from_state.models:
            raise PendingDeletionError(
                f"{app_label}.{self.name}: SafeDeleteModel(DELETE) needs the model removed "
                "from the state first: an earlier migration with "
                "SafeDeleteModel(..., deletion_action=DeletionAction.MOVE_TO_PENDING)."
            )
        table = self.table(app_label)
        if resolve_database(table, app_label, self.name_lower) != schema_editor.connection.alias:
            return
        self._check_paired(app_label, schema_editor)
        schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(table)}")

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if self.deletion_action is DeletionAction.MOVE_TO_PENDING:
            return
        if self.fields is None:
            raise IrreversibleError(
                f"SafeDeleteModel(DELETE) of {app_label}.{self.name} is irreversible without "
                "fields=: pass the model's fields (makemigrations writes them)."
            )
        table = self.table(app_label)
        if resolve_database(table, app_label, self.name_lower) != schema_editor.connection.alias:
            return
        from django.db.migrations.state import ModelState

        state = to_state.clone()
        state.add_model(
            ModelState(
                app_label,
                self.name,
                [(n, f.clone()) for n, f in self.fields],
                options={"db_table": table},
            )
        )
        schema_editor.create_model(state.apps.get_model(app_label, self.name))

    def _check_pending(self, app_label: str, from_state: ProjectState) -> None:
        model_state = from_state.models[app_label, self.name_lower]
        for name, field in model_state.fields.items():
            where = f"{app_label}.{self.name}.{name}"
            if field.many_to_many:
                raise UnsafeMigrationError(
                    "drop-table",
                    where,
                    "SafeDeleteModel does not handle many-to-many fields (their table would "
                    "stay behind)",
                    recipe="  1. Remove the many-to-many field first (through an explicit "
                    "through model and SafeDeleteModel of it).",
                )
            if getattr(field, "remote_field", None) is not None and getattr(
                field, "db_constraint", False
            ):
                raise UnsafeMigrationError(
                    "drop-table",
                    where,
                    "MOVE_TO_PENDING of a model whose foreign key keeps its constraint: "
                    "deleting the referenced rows would fail once the code no longer knows "
                    "this model",
                    recipe="  1. Drop the constraint first: AlterField(..., db_constraint=False)."
                    "\n  2. Then SafeDeleteModel(..., MOVE_TO_PENDING).",
                )


def resolve_database(table: str, app_label: str, model_name: str) -> str:
    """The database alias holding a dropped model's table: ``MIGTOOLS_HISTORICAL_TABLES``, else
    the first router whose ``historical_db_for(table)`` names an alias (the router's historical
    assignment, as Sentry's ``historical_silo_assignments``), else the only database, else the
    one alias a router's ``allow_migrate`` allows. Anything else fails loudly, naming the
    table."""
    historical = mt_settings.historical_tables()
    if table in historical:
        alias = historical[table]
        if alias not in django_settings.DATABASES:
            raise UnroutedTableError(
                f"MIGTOOLS_HISTORICAL_TABLES routes {table!r} to unknown database {alias!r}."
            )
        return alias
    for r in router.routers:
        hook = getattr(r, "historical_db_for", None)
        found = hook(table) if hook is not None else None
        if found is not None:
            if found not in django_settings.DATABASES:
                raise UnroutedTableError(
                    f"{type(r).__name__}.historical_db_for({table!r}) names unknown database "
                    f"{found!r}."
                )
            return str(found)
    aliases = list(django_settings.DATABASES)
    if len(aliases) == 1:
        return aliases[0]
    opinions: dict[str, bool] = {}
    for alias in aliases:
        for r in router.routers:
            method = getattr(r, "allow_migrate", None)
            if method is None:
                continue
            allow = method(alias, app_label, model_name=model_name, table=table)
            if allow is not None:
                opinions[alias] = bool(allow)
                break
    allowed = [alias for alias, ok in opinions.items() if ok]
    if len(allowed) == 1 and len(opinions) == len(aliases):
        return allowed[0]
    raise UnroutedTableError(
        f"Cannot tell which database holds table {table!r} of the removed model "
        f"{app_label}.{model_name}: there are several databases ({', '.join(aliases)}) and no "
        "router decides for it. Answer it from your router's historical_db_for(table), or "
        f"add it to MIGTOOLS_HISTORICAL_TABLES = {{{table!r}: '<alias>'}}, in the "
        "MOVE_TO_PENDING phase, and keep it there."
    )
