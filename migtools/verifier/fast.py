"""The verifier's fast path over the plan (private Django API, fenced here): the project state
is advanced in place, AddField and CreateModel applied to the rendered registry directly, and
one psycopg ``ClientCursor`` merges the statements' parameters. ``MIGTOOLS_FAST_PATHS = False``
turns the in-place state updates off: ``step`` then takes Django's own path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.core.exceptions import FieldDoesNotExist
from django.db import models as dj_models
from django.db.migrations import operations as ops
from django.db.migrations.state import ProjectState

from migtools import conf

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations.operations.base import Operation


# Operations whose state_forwards mutates only the ModelState they name (or adds one): the
# state before them can share every other ModelState with the state after them.
_LOCAL_OPERATIONS: tuple[type, ...] = (
    ops.AddField,
    ops.RemoveField,
    ops.AlterField,
    ops.CreateModel,
    ops.AddIndex,
    ops.RemoveIndex,
    ops.AddConstraint,
    ops.RemoveConstraint,
    ops.AlterModelOptions,
    ops.AlterUniqueTogether,
    ops.AlterModelManagers,
    ops.AlterModelTableComment,
    ops.RunSQL,
    ops.RunPython,
)


def _before(state: ProjectState, operation: Operation, app_label: str) -> ProjectState:
    """A copy of ``state`` that stays the state before ``operation`` once the operation has
    mutated ``state``. ``ProjectState.clone()`` copies every ModelState, which makes a pass
    over the plan quadratic in the number of models; for operations that touch one model
    only that model's ModelState is copied (the rendered registry is cloned as Django does).
    """
    if type(operation) not in _LOCAL_OPERATIONS:
        return state.clone()
    models = dict(state.models)
    name = getattr(operation, "model_name_lower", None) or getattr(operation, "name_lower", None)
    key = (app_label, name) if name else None
    if key is not None and key in models:
        models[key] = models[key].clone()
    before = ProjectState(models=models, real_apps=state.real_apps)
    if "apps" in state.__dict__:
        before.apps = state.apps.clone()
    before.is_delayed = state.is_delayed
    return before


def step(
    state: ProjectState,
    operation: Operation,
    app_label: str,
    editor: BaseDatabaseSchemaEditor | None = None,
    *,
    before: bool = False,
    guard: Callable[[Exception], bool] | None = None,
) -> ProjectState:
    """Advance ``state`` in place over ``operation`` and, given an ``editor``, collect the
    operation's SQL (``database_forwards`` as ``Migration.apply`` calls it; ``guard`` sees an
    exception raised while building the SQL and returns True to swallow it: the rule engine
    turns operations' refusals into findings). Returns a state
    that reads as the state before the operation for what the rules look at (``before``:
    the caller needs one; otherwise ``state`` itself is returned).

    While nothing is rendered (before the first verified migration) this is Django's
    ``state_forwards`` alone. Once the registry is rendered, Django would re-render the
    touched model (and the models related to it) after every operation and clone the whole
    registry before it: both grow with the size of the project, which makes a pass over the
    plan quadratic. AddField and CreateModel, the bulk of any history, are applied to the
    rendered registry in place instead (``_add_field``, ``_create_model``); other
    operations take Django's path, with a copy of only what they touch as the state before.
    """
    if not conf.fast_paths():
        return _django_step(state, operation, app_label, editor, before=before, guard=guard)
    if "apps" in state.__dict__:
        fast = _IN_PLACE.get(type(operation))
        if fast is not None and fast(state, operation, app_label, editor, guard):
            return state
    from_state = _before(state, operation, app_label) if before or editor else state
    operation.state_forwards(app_label, state)
    if editor is not None:
        _forwards(operation, app_label, editor, from_state, state, guard)
    return from_state


def _django_step(
    state: ProjectState,
    operation: Operation,
    app_label: str,
    editor: BaseDatabaseSchemaEditor | None,
    *,
    before: bool,
    guard: Callable[[Exception], bool] | None,
) -> ProjectState:
    """``MIGTOOLS_FAST_PATHS = False``: Django's own path, as ``Migration.apply`` takes it
    (a clone of the whole state, ``state_forwards`` with Django's re-render of the touched
    models, then ``database_forwards``); as ``Migration.mutate_state`` when only the state
    advances. Same states and SQL as ``step``, slower."""
    from_state = state.clone() if before or editor else state
    operation.state_forwards(app_label, state)
    if editor is not None:
        _forwards(operation, app_label, editor, from_state, state, guard)
    return from_state


def _forwards(
    operation: Operation,
    app_label: str,
    editor: BaseDatabaseSchemaEditor,
    from_state: ProjectState,
    to_state: ProjectState,
    guard: Callable[[Exception], bool] | None,
) -> None:
    try:
        operation.database_forwards(app_label, editor, from_state, to_state)
    except Exception as exc:
        if guard is None or not guard(exc):
            raise


def _ignore_reload(*args: object, **kwargs: object) -> None:
    return None


@contextmanager
def _no_reload(state: ProjectState) -> Iterator[None]:
    """Run ``state_forwards`` without Django's re-render of the touched models (the caller
    brings the rendered registry up to date itself)."""
    attrs = vars(state)
    attrs["reload_model"] = attrs["reload_models"] = _ignore_reload
    try:
        yield
    finally:
        del attrs["reload_model"], attrs["reload_models"]


def _add_field(
    state: ProjectState,
    operation: Operation,
    app_label: str,
    editor: BaseDatabaseSchemaEditor | None,
    guard: Callable[[Exception], bool] | None = None,
) -> bool:
    """AddField on the rendered model class in place: the new field is contributed to the
    class the registry already holds (the field order, the table and every other field stay
    what a re-render would give), so the cost does not grow with the model's field count nor
    with the number of models. ``schema_editor.add_field`` reads only the table of the model
    it is given, so the class serves as both the model before and the model after.

    Declines (returns False, nothing changed) for what a re-render handles differently:
    many-to-many and primary-key fields, a field name the class already has, models with
    subclasses (children and proxies cache their parents' fields), unrendered models."""
    assert isinstance(operation, ops.AddField)
    new_field = operation.field
    if new_field.many_to_many or new_field.primary_key:
        return False
    try:
        model = state.apps.get_model(app_label, operation.model_name_lower)
    except LookupError:
        return False
    if model._meta.proxy or type.__subclasses__(model):
        return False
    try:
        model._meta.get_field(operation.name)
    except FieldDoesNotExist:
        pass
    else:
        return False
    with _no_reload(state):
        operation.state_forwards(app_label, state)
    rendered = state.models[app_label, operation.model_name_lower].fields[operation.name].clone()
    model.add_to_class(operation.name, rendered)
    if rendered.is_relation:
        target = rendered.remote_field.model
        if isinstance(target, type) and issubclass(target, dj_models.Model):
            target._meta._expire_cache(forward=False)  # type: ignore[attr-defined]
    if editor is not None:
        _forwards(operation, app_label, editor, state, state, guard)
    return True


def _create_model(
    state: ProjectState,
    operation: Operation,
    app_label: str,
    editor: BaseDatabaseSchemaEditor | None,
    guard: Callable[[Exception], bool] | None = None,
) -> bool:
    """CreateModel renders only the new model into the registry (registering it resolves its
    relations and expires the related models' caches); Django would re-render every model
    it is related to, recursively. Declines for a model that inherits from another model or
    a key the state already holds."""
    assert isinstance(operation, ops.CreateModel)
    key = (app_label, operation.name_lower)
    if key in state.models or any(
        isinstance(base, str)
        or (
            isinstance(base, type)
            and issubclass(base, dj_models.Model)
            and base is not dj_models.Model
        )
        for base in operation.bases or ()
    ):
        return False
    with _no_reload(state):
        operation.state_forwards(app_label, state)
    state.models[key].render(state.apps)
    if editor is not None:
        _forwards(operation, app_label, editor, state, state, guard)
    return True


_InPlace = Callable[
    [
        ProjectState,
        "Operation",
        str,
        "BaseDatabaseSchemaEditor | None",
        "Callable[[Exception], bool] | None",
    ],
    bool,
]


_IN_PLACE: dict[type, _InPlace] = {ops.AddField: _add_field, ops.CreateModel: _create_model}


@contextmanager
def one_client_cursor(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """On psycopg 3, Django's PostgreSQL schema editor merges each statement's parameters
    client-side through ``ops.compose_sql``, which opens a Django cursor and a psycopg
    ``ClientCursor`` per statement; for the pass one ``ClientCursor`` on the same connection
    does it (``mogrify`` keeps no state between calls: the text is the same)."""
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    if connection.vendor != "postgresql" or not is_psycopg3:
        yield
        return
    from django.db.backends.postgresql.operations import DatabaseOperations
    from psycopg import ClientCursor

    ops_ = connection.ops
    if (
        getattr(type(ops_), "compose_sql", None) is not DatabaseOperations.compose_sql
        or "compose_sql" in vars(ops_)  # already client-side (e.g. the offline connection)
    ):
        yield
        return
    connection.ensure_connection()
    client = ClientCursor(connection.connection)

    def compose_sql(sql: str, params: object) -> str:
        return client.mogrify(sql, params)  # type: ignore[arg-type]

    vars(ops_)["compose_sql"] = compose_sql
    try:
        yield
    finally:
        vars(ops_).pop("compose_sql", None)
        client.close()
