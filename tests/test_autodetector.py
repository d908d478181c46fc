"""makemigrations' autodetector writes the two-phase form of removals for managed apps."""

from __future__ import annotations

from django.db import models
from django.db.migrations.graph import MigrationGraph
from django.db.migrations.operations import AlterField
from django.db.migrations.questioner import MigrationQuestioner
from django.db.migrations.state import ModelState, ProjectState

from migtools.autodetector import MigrationAutodetector
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
