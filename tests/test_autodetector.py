"""makemigrations' autodetector writes the two-phase form of removals for managed apps."""

from __future__ import annotations

import pytest
from django.db import models
from django.db.migrations.graph import MigrationGraph
from django.db.migrations.operations import AlterField
from django.db.migrations.questioner import MigrationQuestioner
from django.db.migrations.state import ModelState, ProjectState

from migtools.authoring.autodetector import MigrationAutodetector
from migtools.errors import UnsafeModelChangeError
from migtools.operations import DeletionAction, SafeDeleteModel, SafeRemoveField


def _state(*models_: ModelState) -> ProjectState:
    state = ProjectState()
    for model in models_:
        state.add_model(model)
    return state


def test_removals_become_move_to_pending() -> None:
    before = _state(
        ModelState(
            "alpha",
            "Item",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("name", models.CharField(max_length=5)),
                ("note", models.TextField(null=True)),
            ],
        ),
        ModelState("alpha", "Old", [("id", models.BigAutoField(primary_key=True))]),
    )
    after = _state(ModelState("alpha", "Item", [("id", models.BigAutoField(primary_key=True))]))
    changes = MigrationAutodetector(
        before, after, MigrationQuestioner(specified_apps={"alpha"})
    ).changes(graph=MigrationGraph())
    ops = changes["alpha"][0].operations
    kinds = [(type(op).__name__, getattr(op, "name", None)) for op in ops]
    assert ("AlterField", "name") in kinds  # NOT NULL made nullable first
    alter = next(op for op in ops if isinstance(op, AlterField))
    assert alter.field.null is True
    removes = {op.name for op in ops if isinstance(op, SafeRemoveField)}
    assert removes == {"name", "note"}
    assert all(
        op.deletion_action is DeletionAction.MOVE_TO_PENDING
        for op in ops
        if isinstance(op, SafeRemoveField | SafeDeleteModel)
    )
    assert any(isinstance(op, SafeDeleteModel) and op.name == "Old" for op in ops)
    # State-equivalent: applying the safe operations gives the target state.
    state = before.clone()
    for op in ops:
        op.state_forwards("alpha", state)
    assert set(state.models) == set(after.models)
    assert set(state.models["alpha", "item"].fields) == {"id"}


def test_unmanaged_apps_keep_django_operations() -> None:
    before = _state(ModelState("auth", "Thing", [("id", models.BigAutoField(primary_key=True))]))
    changes = MigrationAutodetector(
        before, ProjectState(), MigrationQuestioner(specified_apps={"auth"})
    ).changes(graph=MigrationGraph())
    assert [type(op).__name__ for op in changes["auth"][0].operations] == ["DeleteModel"]


def _item(*fields: tuple[str, models.Field], name: str = "Item", **options: object) -> ModelState:  # type: ignore[type-arg]
    return ModelState(
        "alpha",
        name,
        [("id", models.BigAutoField(primary_key=True)), *fields],
        options=dict(options),
    )


def _changes(
    before: ProjectState, after: ProjectState, **defaults: bool
) -> dict[str, list[object]]:
    questioner = MigrationQuestioner(specified_apps={"alpha"}, defaults=defaults)
    return MigrationAutodetector(before, after, questioner).changes(graph=MigrationGraph())


def test_not_null_add_field_with_python_default_is_refused_with_the_edit() -> None:
    before = _state(_item())
    after = _state(_item(("qty", models.IntegerField(default=0))))
    with pytest.raises(UnsafeModelChangeError) as exc:
        _changes(before, after)
    assert "alpha.Item.qty: NOT NULL column with only a Python default=" in str(exc.value)
    assert "add db_default=0 next to default=0" in str(exc.value)


def test_db_default_or_nullable_add_field_is_written() -> None:
    before = _state(_item())
    for field in (models.IntegerField(default=0, db_default=0), models.IntegerField(null=True)):
        changes = _changes(before, _state(_item(("qty", field))))
        assert [type(op).__name__ for op in changes["alpha"][0].operations] == ["AddField"]


def test_rename_field_that_renames_the_column_is_refused() -> None:
    before = _state(_item(("title", models.CharField(max_length=5))))
    after = _state(_item(("name", models.CharField(max_length=5))))
    with pytest.raises(UnsafeModelChangeError, match="add db_column='title' to the field"):
        _changes(before, after, ask_rename=True)


def test_rename_field_keeping_the_column_is_written() -> None:
    before = _state(_item(("title", models.CharField(max_length=5))))
    after = _state(_item(("name", models.CharField(max_length=5, db_column="title"))))
    changes = _changes(before, after, ask_rename=True)
    assert "RenameField" in [type(op).__name__ for op in changes["alpha"][0].operations]


def test_rename_model_that_renames_the_table_is_refused() -> None:
    before = _state(_item(("title", models.CharField(max_length=5))))
    after = _state(_item(("title", models.CharField(max_length=5)), name="Product"))
    with pytest.raises(UnsafeModelChangeError, match="add db_table = 'alpha_item'"):
        _changes(before, after, ask_rename_model=True)
    kept = _state(
        _item(("title", models.CharField(max_length=5)), name="Product", db_table="alpha_item")
    )
    ops = _changes(before, kept, ask_rename_model=True)["alpha"][0].operations
    assert "RenameModel" in [type(op).__name__ for op in ops]
