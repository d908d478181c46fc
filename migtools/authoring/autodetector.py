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

from typing import Any, ClassVar, cast

from django.db.migrations import operations as ops
from django.db.migrations.autodetector import MigrationAutodetector as DjangoAutodetector
from django.db.models import NOT_PROVIDED

from migtools.errors import UnsafeModelChangeError
from migtools.operations import DeletionAction, SafeDeleteModel, SafeRemoveField

# Widening an integer column changes its type: PostgreSQL rewrites the table.
_NARROW_INTEGERS = frozenset(
    {"IntegerField", "SmallIntegerField", "PositiveIntegerField", "PositiveSmallIntegerField"}
)
_WIDE_INTEGERS = frozenset({"BigIntegerField", "PositiveBigIntegerField"})


def _edit(where: str, what: str, rule_id: str, edit: str) -> str:
    """One refused model change: what is wrong, the edit to make, the recipe's first step
    and the ``--explain`` hint."""
    from migtools.rules.catalogue import CATALOGUE, hint

    return (
        f"  - {where}: {what} [{rule_id}]. Edit the model: {edit}.\n"
        f"    fix: {CATALOGUE[rule_id].first_step}\n"
        f"    {hint(rule_id)}"
    )


class _Questioner:
    """Django's questioner, except that the NOT NULL questions about a managed app are never
    asked (interactive or ``--noinput``): each is recorded, and ``changes()`` refuses them
    all with the edit to make. Every other question goes to Django's questioner."""

    def __init__(self, inner: Any, detector: MigrationAutodetector) -> None:
        self._inner = inner
        self._detector = detector

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def ask_not_null_addition(self, field_name: str, model_name: str) -> Any:
        if self._detector.record_addition(auto_now_add=False):
            return None
        return self._inner.ask_not_null_addition(field_name, model_name)

    def ask_auto_now_add_addition(self, field_name: str, model_name: str) -> Any:
        if self._detector.record_addition(auto_now_add=True):
            return None
        return self._inner.ask_auto_now_add_addition(field_name, model_name)

    def ask_not_null_alteration(self, field_name: str, model_name: str) -> Any:
        if self._detector.record_alteration(field_name, model_name):
            return NOT_PROVIDED
        return self._inner.ask_not_null_alteration(field_name, model_name)


class MigrationAutodetector(DjangoAutodetector):
    #: The last one made in this process (makemigrations judges what it is about to write on
    #: its ``graph`` and ``from_state``, what Django already built from the history).
    last: ClassVar[MigrationAutodetector | None] = None

    def __init__(self, from_state: Any, to_state: Any, questioner: Any = None) -> None:
        super().__init__(from_state, to_state, questioner)
        MigrationAutodetector.last = self
        self.questioner = cast(Any, _Questioner(self.questioner, self))
        self.graph: Any = None  # set by changes()
        self._adding: tuple[str, str, str] | None = None
        self._asked: dict[tuple[str, str, str], str] = {}

    def _managed(self) -> frozenset[str]:
        from migtools.rules.scope import managed_labels

        return frozenset(managed_labels())

    def _generate_added_field(
        self, app_label: str, model_name: str, field_name: str, *args: Any, **kwargs: Any
    ) -> None:
        self._adding = (app_label, model_name, field_name)
        try:
            super()._generate_added_field(  # type: ignore[misc]
                app_label, model_name, field_name, *args, **kwargs
            )
        finally:
            self._adding = None

    def record_addition(self, *, auto_now_add: bool) -> bool:
        """Django is about to ask for a one-off default of the field being added: for a
        managed app, record the refusal instead (True)."""
        if self._adding is None or self._adding[0] not in self._managed():
            return False
        app_label, model_name, field_name = self._adding
        where = f"{app_label}.{self.to_state.models[app_label, model_name].name}.{field_name}"
        if auto_now_add:
            edit = (
                "give it db_default=Now() (from django.db.models.functions import Now) next "
                "to auto_now_add=True, or null=True"
            )
        else:
            edit = "give it db_default=<value>, or null=True"
        self._asked[self._adding] = _edit(
            where,
            "NOT NULL column added with no default at all: the existing rows need a value "
            "and the old code's INSERTs do not send one",
            "not-null-without-db-default",
            edit,
        )
        return True

    def record_alteration(self, field_name: str, model_name: str) -> bool:
        """Django is about to ask for a one-off value for the NULL rows of a field made NOT
        NULL: for a managed app, record the refusal instead (True)."""
        managed = self._managed()
        found = False
        for (app_label, model), state in self.to_state.models.items():
            if model != model_name or app_label not in managed:
                continue
            old = self.from_state.models.get((app_label, model))
            if old is None or field_name not in old.fields or field_name not in state.fields:
                continue
            if not (old.fields[field_name].null and not state.fields[field_name].null):
                continue
            found = True
            self._asked[app_label, model, field_name] = _edit(
                f"{app_label}.{state.name}.{field_name}",
                "null=True -> NOT NULL with no default at all: the rows holding NULL would "
                "need a one-off value, and the old code keeps inserting NULL",
                "set-not-null",
                "keep null=True for now; give it db_default=<value> so new rows get one, "
                "backfill the NULL rows (a RunBackfill in its own post-deployment "
                "migration), then make it NOT NULL in a later migration",
            )
        return found

    def changes(self, *args: Any, **kwargs: Any) -> dict[str, list[Any]]:
        # The history Django's makemigrations loaded: what it is about to write is judged on it.
        self.graph = kwargs["graph"] if "graph" in kwargs else args[0]
        changes: dict[str, list[Any]] = super().changes(*args, **kwargs)
        managed = self._managed()
        problems: list[str] = list(self._asked.values())
        for app_label, migrations in changes.items():
            if app_label not in managed:
                continue
            for migration in migrations:
                problems += self._model_edits(app_label, migration.operations)
                migration.operations = self._safe_operations(app_label, migration.operations)
        if problems:
            raise UnsafeModelChangeError(
                "These model changes would need an unsafe migration; nothing was written. "
                "Change the models as shown, then run makemigrations again:\n" + "\n".join(problems)
            )
        return changes

    def _model_edits(self, app_label: str, operations: list[Any]) -> list[str]:
        """The model edits that make each unsafe operation safe (empty when none is needed)."""
        edits: list[str] = []
        for op in operations:
            key = (app_label, getattr(op, "model_name_lower", ""))
            if (app_label, key[1], getattr(op, "name", "")) in self._asked:
                continue  # refused before Django asked its question
            if type(op) is ops.AddField and key in self.from_state.models:
                field = op.field
                if field.null or field.has_db_default() or field.many_to_many:
                    continue
                where = f"{app_label}.{self.to_state.models[key].name}.{op.name}"
                if not field.has_default():
                    if field.blank and field.empty_strings_allowed:
                        # Django fills the existing rows with '' once, then drops it.
                        edits.append(
                            _edit(
                                where,
                                "NOT NULL column with no default (blank=True: Django fills "
                                "the existing rows with '' once); the old code's INSERTs do "
                                "not send it and would fail",
                                "not-null-without-db-default",
                                "give it db_default='', or null=True",
                            )
                        )
                    continue
                if callable(field.default):
                    name = getattr(field.default, "__name__", repr(field.default))
                    edit = (
                        f"its default= is a callable ({name}), which the database cannot "
                        "run: make it null=True (and backfill), or give it a db_default= "
                        f"expression computing {name}() in the database"
                    )
                else:
                    edit = f"add db_default={field.default!r} next to default={field.default!r}"
                edits.append(
                    _edit(
                        where,
                        "NOT NULL column with only a Python default=; the old code's INSERTs "
                        "do not send it and would fail",
                        "default-not-db-default",
                        edit,
                    )
                )
            elif type(op) is ops.AlterField and key in self.from_state.models:
                old_field = self.from_state.models[key].fields.get(op.name)
                old_kind = type(old_field).__name__ if old_field is not None else ""
                new_kind = type(op.field).__name__
                if old_kind in _NARROW_INTEGERS and new_kind in _WIDE_INTEGERS:
                    edits.append(
                        _edit(
                            f"{app_label}.{self.to_state.models[key].name}.{op.name}",
                            f"{old_kind} -> {new_kind} rewrites the table and its indexes "
                            "under an ACCESS EXCLUSIVE lock, and the old code keeps writing "
                            "the old type",
                            "column-type-change",
                            "keep the field as it is for now",
                        )
                    )
            elif type(op) is ops.RenameField:
                old = self.from_state.models[app_label, op.model_name_lower].fields[op.old_name]
                new = self.to_state.models[app_label, op.model_name_lower].fields[op.new_name]
                old_column = old.db_column or op.old_name
                if (new.db_column or op.new_name) != old_column:
                    edits.append(
                        _edit(
                            f"{app_label}.{self.to_state.models[key].name}.{op.new_name}",
                            "renaming the column breaks the running code, which still uses "
                            f"'{old_column}'",
                            "rename-column",
                            f"keep the column: add db_column={old_column!r} to the field",
                        )
                    )
            elif type(op) is ops.RenameModel:
                old_table = self._table(self.from_state, app_label, op.old_name_lower)
                new_table = self._table(self.to_state, app_label, op.new_name_lower)
                if new_table != old_table:
                    edits.append(
                        _edit(
                            f"{app_label}.{op.new_name}",
                            f"renaming the table breaks the running code, which still uses "
                            f"'{old_table}'",
                            "rename-table",
                            f"keep the table: add db_table = {old_table!r} to the model's Meta",
                        )
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
