"""The autodetector ``makemigrations`` uses: writes the two-phase form of removals.

``RemoveField`` becomes ``SafeRemoveField(..., MOVE_TO_PENDING)`` (preceded by an
``AlterField(null=True)`` when the field is NOT NULL without ``db_default``, so the old code's
INSERTs keep working) and ``DeleteModel`` becomes ``SafeDeleteModel(..., MOVE_TO_PENDING)``,
for managed apps. Both are state-equivalent to what they replace, so the autodetector never
sees a difference afterwards. The DELETE phase is written by hand in a later migration.
"""

from __future__ import annotations

from typing import Any

from django.db.migrations import operations as ops
from django.db.migrations.autodetector import MigrationAutodetector as DjangoAutodetector

from migtools.operations import DeletionAction, SafeDeleteModel, SafeRemoveField


class MigrationAutodetector(DjangoAutodetector):
    def changes(self, *args: Any, **kwargs: Any) -> dict[str, list[Any]]:
        changes: dict[str, list[Any]] = super().changes(*args, **kwargs)
        from migtools.enforcement import managed_labels

        managed = managed_labels()
        for app_label, migrations in changes.items():
            if app_label not in managed:
                continue
            for migration in migrations:
                migration.operations = self._safe_operations(app_label, migration.operations)
        return changes

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
