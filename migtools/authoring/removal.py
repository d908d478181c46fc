"""The DELETE phase of two-phase removals, as ``makemigrations --finish-removal APP`` writes it.

A removal is *pending* when a migration of the app holds ``SafeRemoveField`` /
``SafeDeleteModel(..., MOVE_TO_PENDING)`` and no later migration of the app holds the DELETE
of the same field or model. It is *deployed* when that migration is recorded as applied on
the database given (``--database``): the code that stopped using the column or table is then
live there, so dropping it breaks nothing.

For each deployed pending removal the DELETE operation carries what the removal took away,
read from the migration state just before the MOVE_TO_PENDING, so that it is reversible:
``SafeRemoveField(..., DELETE, field=<the field as it was>)``, ``SafeDeleteModel(...,
DELETE, db_table=..., fields=[...])``. They go into one new migration of the app, after its
leaf, with ``is_post_deployment = True`` (a drop runs once the deploy is done).

Which removals are deployed only the database can say: when it cannot be reached, nothing is
written (``DatabaseUnavailableError``): a DELETE written for a removal that is not deployed
would drop a column the running code still reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import connections
from django.db.migrations import Migration
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.loader import MigrationLoader
from django.db.utils import DatabaseError

from migtools import dberrors
from migtools.errors import ConflictError
from migtools.operations import DeletionAction, SafeDeleteModel, SafeRemoveField

if TYPE_CHECKING:
    from django.db.migrations.operations.base import Operation

Node = tuple[str, str]
DEFAULT_NAME = "finish_removal"


@dataclass(frozen=True)
class Pending:
    """One MOVE_TO_PENDING without its DELETE phase yet."""

    node: Node  # the migration holding the MOVE_TO_PENDING
    delete: Operation  # the DELETE operation that finishes it (reversible)
    deployed: bool  # that migration is applied on the database

    def describe(self) -> str:
        op = self.delete
        if isinstance(op, SafeRemoveField):
            return f"{self.node[0]}.{op.model_name}.{op.name} ({self.node[1]})"
        return f"{self.node[0]}.{op.name} ({self.node[1]})"  # type: ignore[attr-defined]


def load(database: str) -> MigrationLoader:
    """The graph with what is applied on ``database`` (one line, exit 1, when the database
    cannot be reached: only it can tell what is deployed)."""
    connection = connections[database]
    try:
        loader = MigrationLoader(connection, ignore_no_migrations=True)
        connection.ensure_connection()
    except DatabaseError as exc:
        raise dberrors.unavailable(database, exc) from None
    return loader


def pending(loader: MigrationLoader, app_label: str) -> list[Pending]:
    """The app's removals waiting for their DELETE phase, in the order they were made."""
    leaves = loader.graph.leaf_nodes(app_label)
    if len(leaves) > 1:
        raise ConflictError({app_label: [name for _app, name in leaves]})
    if not leaves:
        return []
    applied = set(loader.applied_migrations or {})
    waiting: dict[tuple[str, str], tuple[Node, int]] = {}
    for node in loader.graph.forwards_plan(leaves[0]):
        if node[0] != app_label:
            continue
        for index, op in enumerate(loader.graph.nodes[node].operations):
            key = _item(op)
            if key is None:
                continue
            if op.deletion_action is DeletionAction.MOVE_TO_PENDING:
                waiting[key] = (node, index)
            else:
                waiting.pop(key, None)
    out = []
    for node, index in sorted(waiting.values(), key=lambda v: _position(loader, leaves[0], v)):
        out.append(Pending(node, _delete_of(loader, node, index), node in applied))
    return out


def _position(loader: MigrationLoader, leaf: Node, where: tuple[Node, int]) -> tuple[int, int]:
    return loader.graph.forwards_plan(leaf).index(where[0]), where[1]


def _item(op: Any) -> tuple[str, str] | None:
    if type(op) is SafeRemoveField:
        return ("field", f"{op.model_name_lower}.{op.name_lower}")
    if type(op) is SafeDeleteModel:
        return ("model", op.name_lower)
    return None


def _delete_of(loader: MigrationLoader, node: Node, index: int) -> Operation:
    """The reversible DELETE of the MOVE_TO_PENDING at ``node``'s operation ``index``: what
    it removed, read from the state just before it."""
    app_label = node[0]
    migration = loader.graph.nodes[node]
    state = loader.project_state(node, at_end=False)
    for op in migration.operations[:index]:
        op.state_forwards(app_label, state)
    op = migration.operations[index]
    if isinstance(op, SafeRemoveField):
        field = state.models[app_label, op.model_name_lower].fields[op.name]
        return SafeRemoveField(
            op.model_name, op.name, deletion_action=DeletionAction.DELETE, field=field.clone()
        )
    model = state.models[app_label, op.name_lower]
    table = model.options.get("db_table") or f"{app_label}_{op.name_lower}"
    return SafeDeleteModel(
        op.name,
        deletion_action=DeletionAction.DELETE,
        db_table=str(table),
        fields=[(name, field.clone()) for name, field in model.fields.items()],
    )


def migration(
    loader: MigrationLoader, app_label: str, items: list[Pending], name: str | None
) -> Migration:
    """One new migration of ``app_label`` after its leaf, holding the DELETE of ``items``,
    post-deployment (the writer states it: ``migtools.authoring.writer.attributes_of``)."""
    (leaf,) = loader.graph.leaf_nodes(app_label)
    number = (MigrationAutodetector.parse_number(leaf[1]) or 0) + 1
    klass = type(
        "Migration",
        (Migration,),
        {
            "__module__": f"{app_label}.migrations",
            "is_post_deployment": True,
            "dependencies": [leaf],
            "operations": [item.delete for item in items],
        },
    )
    return klass(f"{number:04d}_{name or DEFAULT_NAME}", app_label)  # type: ignore[no-any-return]
