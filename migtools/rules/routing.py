"""Which database an operation runs on: the project's routers, asked as Django's operations ask.

Django's operations consult ``router.allow_migrate`` in ``database_forwards``: a model
operation through ``allow_migrate_model(alias, model)`` (``model_name=`` and ``model=`` as
hints), ``RunPython``/``RunSQL`` through ``allow_migrate(alias, app_label, **hints)``. The
rule engine asks the same question before judging an operation, so an operation the router
skips on an alias is neither judged nor counted there (its SQL is empty there anyway).

An operation may answer for itself with ``migtools_routed(alias, app_label) -> bool`` (the
DELETE phase of ``SafeDeleteModel``, whose model is gone from the state: its table's database
comes from the router's historical assignment).

``reads_hints()`` is the heuristic behind ``run-without-hints``: a project "reads hints" when
one of its routers' ``allow_migrate`` takes ``**hints`` (or a ``hints`` parameter) and its
source uses that name (``hints.get(...)``, ``hints[...]``, ``"x" in hints``); a router that
only accepts ``**hints`` to satisfy the signature does not count.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import TYPE_CHECKING

from django.db import router
from django.db.migrations import operations as ops

if TYPE_CHECKING:
    from django.db.migrations.migration import Migration
    from django.db.migrations.operations.base import Operation
    from django.db.migrations.state import ProjectState


def routed(
    operation: Operation, app_label: str, alias: str, state: ProjectState | None = None
) -> bool:
    """Whether ``operation`` of ``app_label`` runs on database ``alias`` (``state``: the state
    before it, to hand routers the historical model as Django does)."""
    own = getattr(operation, "migtools_routed", None)
    if own is not None:
        return bool(own(alias, app_label))
    if not router.routers:
        return True  # Django's answer without routers (and no registry rendered to say so)
    if isinstance(operation, ops.SeparateDatabaseAndState) and operation.database_operations:
        return any(routed(op, app_label, alias, state) for op in operation.database_operations)
    if isinstance(operation, ops.RunPython | ops.RunSQL):
        return bool(router.allow_migrate(alias, app_label, **operation.hints))
    target = _model_of(operation, app_label)
    if target is None:
        return bool(router.allow_migrate(alias, app_label))  # unknown kind: the app decides
    model_app, model_name = target
    model = None
    # The historical model as a hint, when the state's registry is rendered already (never
    # rendered just for this: the verifier's speed depends on rendering once).
    if state is not None and "apps" in vars(state) and (model_app, model_name) in state.models:
        try:
            model = state.apps.get_model(model_app, model_name)
        except LookupError:
            model = None
    if model is not None:
        return bool(router.allow_migrate_model(alias, model))
    return bool(router.allow_migrate(alias, model_app, model_name=model_name))


def runs_on(migration: Migration, alias: str) -> bool:
    """Whether ``migration`` does anything on ``alias`` (an empty one runs everywhere: it is
    recorded as applied)."""
    return not migration.operations or any(
        routed(op, migration.app_label, alias) for op in migration.operations
    )


def databases(
    operation: Operation, app_label: str, aliases: list[str], state: ProjectState | None = None
) -> list[str]:
    """The aliases of ``aliases`` the router lets ``operation`` run on."""
    return [alias for alias in aliases if routed(operation, app_label, alias, state)]


def _model_of(operation: Operation, app_label: str) -> tuple[str, str] | None:
    """(app_label, lower-case model name) an operation acts on, when it acts on one."""
    model = getattr(operation, "model", None)
    if isinstance(model, str) and model.count(".") == 1:  # RunBackfill("app.Model", ...)
        app, name = model.split(".")
        return app, name.lower()
    for attribute in ("model_name_lower", "name_lower", "old_name_lower"):
        value = getattr(operation, attribute, None)
        if isinstance(value, str):
            return app_label, value
    return None


def reads_hints() -> bool:
    """Whether a configured router's ``allow_migrate`` reads its hints (see the module
    docstring for the heuristic)."""
    return any(_cached_reads_hints(type(r)) for r in router.routers)


_READS_HINTS: dict[type, bool] = {}


def _cached_reads_hints(candidate: type) -> bool:
    if candidate not in _READS_HINTS:
        _READS_HINTS[candidate] = _router_reads_hints(candidate)
    return _READS_HINTS[candidate]


def _router_reads_hints(candidate: type) -> bool:
    method = getattr(candidate, "allow_migrate", None)
    if method is None:
        return False
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):
        return False
    names = [
        p.name
        for p in signature.parameters.values()
        if p.kind is inspect.Parameter.VAR_KEYWORD or p.name == "hints"
    ]
    if not names:
        return False
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(method)))
    except (OSError, TypeError, SyntaxError):
        return True  # no source to read: it takes the hints, assume it reads them
    function = tree.body[0]
    if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
        return True
    used = {
        node.id
        for statement in function.body
        for node in ast.walk(statement)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }
    return any(name in used for name in names)
