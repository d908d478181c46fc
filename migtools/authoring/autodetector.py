"""The autodetector ``makemigrations`` uses: writes the two-phase form of removals.

``RemoveField`` becomes ``SafeRemoveField(..., MOVE_TO_PENDING)`` (preceded by an
``AlterField(null=True)`` when the field is NOT NULL without ``db_default``, so the old code's
INSERTs keep working) and ``DeleteModel`` becomes ``SafeDeleteModel(..., MOVE_TO_PENDING)``,
for managed apps. Both are state-equivalent to what they replace, so the autodetector never
sees a difference afterwards. The DELETE phase is written by hand in a later migration.

Where the safe form would NOT reproduce the models' state (the autodetector would then write a
fix-up migration forever), the model must change instead, and makemigrations refuses, showing
the edit to make: a NOT NULL ``AddField`` with only ``default=`` (give it ``db_default=``), and a
rename that would rename the column or table (keep it with ``db_column=`` / ``Meta.db_table``).
"""

from __future__ import annotations

from typing import Any

from django.db.migrations import operations as ops
from django.db.migrations.autodetector import MigrationAutodetector as DjangoAutodetector

from migtools.errors import UnsafeModelChangeError
from migtools.operations import DeletionAction, SafeDeleteModel, SafeRemoveField

# Widening an integer column changes its type: PostgreSQL rewrites the table.
_NARROW_INTEGERS = frozenset(
    {"IntegerField", "SmallIntegerField", "PositiveIntegerField", "PositiveSmallIntegerField"}
)
_WIDE_INTEGERS = frozenset({"BigIntegerField", "PositiveBigIntegerField"})


class MigrationAutodetector(DjangoAutodetector):
    def changes(self, *args: Any, **kwargs: Any) -> dict[str, list[Any]]:
        changes: dict[str, list[Any]] = super().changes(*args, **kwargs)
        from migtools.rules.scope import managed_labels

        managed = managed_labels()
        problems: list[str] = []
        for app_label, migrations in changes.items():
            if app_label not in managed:
                continue
            for migration in migrations:
                problems += self._model_edits(app_label, migration.operations)
                migration.operations = self._safe_operations(app_label, migration.operations)
        if problems:
            raise UnsafeModelChangeError(
                "These model changes would need an unsafe migration; change the models as "
                "shown, then run makemigrations again:\n" + "\n".join(problems)
            )
        return changes

    def _model_edits(self, app_label: str, operations: list[Any]) -> list[str]:
        """The model edits that make each unsafe operation safe (empty when none is needed)."""
        edits: list[str] = []
        for op in operations:
            key = (app_label, getattr(op, "model_name_lower", ""))
            if type(op) is ops.AddField and key in self.from_state.models:
                field = op.field
                if field.null or field.has_db_default() or not field.has_default():
                    continue
                where = f"{app_label}.{self.to_state.models[key].name}.{op.name}"
                if callable(field.default):
                    edit = (
                        f"make it null=True (and backfill), or give it a db_default= expression "
                        f"computing {field.default.__name__}() in the database"
                    )
                else:
                    edit = f"add db_default={field.default!r} next to default={field.default!r}"
                edits.append(
                    f"  - {where}: NOT NULL column with only a Python default=; the old code's "
                    f"INSERTs do not send it and would fail. Edit the model: {edit}."
                )
            elif type(op) is ops.AlterField and key in self.from_state.models:
                old_field = self.from_state.models[key].fields.get(op.name)
                old_kind = type(old_field).__name__ if old_field is not None else ""
                new_kind = type(op.field).__name__
                if old_kind in _NARROW_INTEGERS and new_kind in _WIDE_INTEGERS:
                    from migtools.rules.catalogue import CATALOGUE, hint

                    edits.append(
                        f"  - {app_label}.{self.to_state.models[key].name}.{op.name}: "
                        f"{old_kind} -> {new_kind} rewrites the table and its indexes under "
                        "an ACCESS EXCLUSIVE lock, and the old code keeps writing the old type "
                        "[column-type-change]. Keep the model's field as it is for now; fix: "
                        f"{CATALOGUE['column-type-change'].first_step} "
                        f"({hint('column-type-change')})."
                    )
            elif type(op) is ops.RenameField:
                old = self.from_state.models[app_label, op.model_name_lower].fields[op.old_name]
                new = self.to_state.models[app_label, op.model_name_lower].fields[op.new_name]
                old_column = old.db_column or op.old_name
                if (new.db_column or op.new_name) != old_column:
                    edits.append(
                        f"  - {app_label}.{self.to_state.models[key].name}.{op.new_name}: "
                        "renaming the column "
                        f"breaks the running code, which still uses '{old_column}'. Keep the "
                        f"column: add db_column={old_column!r} to the field."
                    )
            elif type(op) is ops.RenameModel:
                old_table = self._table(self.from_state, app_label, op.old_name_lower)
                new_table = self._table(self.to_state, app_label, op.new_name_lower)
                if new_table != old_table:
                    edits.append(
                        f"  - {app_label}.{op.new_name}: renaming the table breaks the running "
                        f"code, which still uses '{old_table}'. Keep the table: add "
                        f"db_table = {old_table!r} to the model's Meta."
                    )
        return edits

    @staticmethod
    def _table(state: Any, app_label: str, model_name: str) -> str:
        model = state.models[app_label, model_name]
        return str(model.options.get("db_table") or f"{app_label}_{model_name}")

    def _safe_operations(self, app_label: str, operations: list[Any]) -> list[Any]:
        out: list[Any] = []
        for op in operations:
            if type(op) is ops.RemoveField:
                field = self.from_state.models[app_label, op.model_name_lower].fields[op.name]
                if not field.many_to_many and not field.null and not field.has_db_default():
                    nullable = field.clone()
                    nullable.null = True
                    out.append(ops.AlterField(op.model_name, op.name, nullable))
                out.append(
                    SafeRemoveField(
                        op.model_name, op.name, deletion_action=DeletionAction.MOVE_TO_PENDING
                    )
                )
            elif type(op) is ops.DeleteModel:
                out.append(SafeDeleteModel(op.name, deletion_action=DeletionAction.MOVE_TO_PENDING))
            else:
                out.append(op)
        return out
