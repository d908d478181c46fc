"""Offline proof of a squash: the project state the squash builds against the state its
replaced migrations build, field by field (constraints and indexes included), plus what the
squash will not re-run (elided ``RunPython``/``RunSQL``) and what it lost by hand.

Both paths come from one loader that keeps squashes and replaced migrations side by side
(``replace_migrations=False``): the replaced path is the base (everything the replaced migrations
depend on) then the replaced migrations; the squash path is the same base then the squash. A
migration of another app that sits between two replaced migrations runs after the squash on
the squash path, as Django's loader would run it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.migrations.graph import MigrationGraph
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.operations import RunPython, RunSQL
from django.db.migrations.state import ModelState, ProjectState

from migtools.errors import GraphError
from migtools.squash import _django

Key = tuple[str, str]

SQUASH = "the squash"
REPLACED = "the replaced migrations"


@dataclass
class Paths:
    """The two ways to the same point: node lists in apply order."""

    squash: Key
    replaced: list[Key]
    squash_path: list[Key]
    replaced_path: list[Key]


@dataclass
class Comparison:
    """What verify_squashes found for one squash."""

    squash: Key
    replaced: list[Key]
    differences: list[str] = field(default_factory=list)
    elided: list[str] = field(default_factory=list)  # what the squash will not re-run
    notes: list[str] = field(default_factory=list)  # no failure (e.g. names differ)
    skipped: str | None = None  # why it could not be compared

    @property
    def faithful(self) -> bool:
        return self.skipped is None and not self.differences


def fmt(key: Key) -> str:
    return f"{key[0]}.{key[1]}"


def loader() -> MigrationLoader:
    """Every migration on disk, squashes and replaced migrations side by side."""
    from django.db.migrations.exceptions import BadMigrationError, NodeNotFoundError

    try:
        return MigrationLoader(None, ignore_no_migrations=True, replace_migrations=False)
    except (NodeNotFoundError, BadMigrationError) as exc:
        raise GraphError(f"The migration graph is broken: {exc}") from None


def node(source: MigrationLoader, key: Key) -> Migration:
    """The migration object at ``key`` of the graph."""
    migration: Migration | None = source.graph.nodes[key]
    assert migration is not None
    return migration


def replaced_keys(migration: Migration) -> list[Key]:
    return [(str(r[0]), str(r[1])) for r in migration.replaces]


def expanded(source: MigrationLoader, keys: list[Key]) -> list[Key]:
    """``keys`` with each squash among them (a squash of a squash, Django 6.0+) replaced by
    what it replaces, recursively, when those are on disk: the migrations a database that
    never saw any squash applied."""
    out: list[Key] = []
    for key in keys:
        migration = source.disk_migrations.get(key)
        inner = replaced_keys(migration) if migration is not None and migration.replaces else []
        if inner and all(k in source.graph.nodes for k in inner):
            out += expanded(source, inner)
        else:
            out.append(key)
    return out


def squashes(source: MigrationLoader, app_labels: Iterable[str] | None = None) -> list[Key]:
    """Every migration with ``replaces`` in the given apps (all apps when None), sorted."""
    labels = set(app_labels) if app_labels is not None else None
    return sorted(
        key
        for key, migration in source.disk_migrations.items()
        if migration.replaces and (labels is None or key[0] in labels)
    )


def paths(source: MigrationLoader, key: Key) -> Paths | str:
    """Both apply orders for the squash ``key``, or why there are none."""
    graph: MigrationGraph = source.graph
    replaced = expanded(source, replaced_keys(node(source, key)))
    missing = [r for r in replaced if r not in graph.nodes]
    if missing:
        return (
            f"its replaced migrations {', '.join(fmt(m) for m in missing)} are no longer on "
            "disk: nothing to compare"
        )
    replaced_set = set(replaced)
    replaced_plan: list[Key] = _django.plan(graph, replaced)
    squash_plan: list[Key] = _django.plan(graph, [key])
    if any(node in replaced_set for node in squash_plan):
        return "the squash depends on a migration it replaces"
    if key in replaced_plan:
        return "a replaced migration depends on the squash"
    in_squash = set(squash_plan)
    in_replaced = set(replaced_plan)
    # Nodes of another app interleaved with the replaced migrations run after the squash.
    squash_path = squash_plan + [
        n for n in replaced_plan if n not in in_squash and n not in replaced_set
    ]
    replaced_path = replaced_plan + [n for n in squash_plan if n not in in_replaced and n != key]
    return Paths(key, replaced, squash_path, replaced_path)


def state(source: MigrationLoader, nodes: Iterable[Key]) -> ProjectState:
    result = ProjectState(real_apps=source.unmigrated_apps)
    for key in nodes:
        result = node(source, key).mutate_state(result, preserve=False)
    return result


def compare(source: MigrationLoader, key: Key) -> Comparison:
    """The offline comparison of one squash."""
    result = Comparison(key, replaced_keys(node(source, key)))
    found = paths(source, key)
    if isinstance(found, str):
        result.skipped = found
        return result
    try:
        squash_state = state(source, found.squash_path)
        replaced_state = state(source, found.replaced_path)
    except Exception as exc:  # a path that does not even build its state is a finding
        result.differences.append(f"the states cannot be built: {type(exc).__name__}: {exc}")
        return result
    result.differences += diff_states(squash_state, replaced_state)
    special = _special_operations(source, found)
    result.differences += special[0]
    result.elided += special[1]
    return result


# --------------------------------------------------------------------------- state diff


def _deconstructed(value: Any) -> Any:
    if hasattr(value, "deconstruct"):
        path, args, kwargs = value.deconstruct()[-3:]
        return (path, tuple(args), dict(sorted(kwargs.items())))
    return value


def _field(value: Any) -> tuple[str, dict[str, Any]]:
    _name, path, args, kwargs = value.deconstruct()
    if args:
        kwargs = {**kwargs, "*args": list(args)}
    return path, kwargs


def _show(path: str, kwargs: dict[str, Any]) -> str:
    shown = ", ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items()))
    return f"{path.rsplit('.', 1)[-1]}({shown})"


def _normal_together(value: Any) -> Any:
    if isinstance(value, list | tuple | set | frozenset):
        return sorted(tuple(v) if isinstance(v, list | tuple) else v for v in value)
    return value


def diff_states(squash: ProjectState, replaced: ProjectState) -> list[str]:
    """Readable differences between two project states (empty: the same)."""
    out: list[str] = []
    a_models: dict[Key, ModelState] = squash.models
    b_models: dict[Key, ModelState] = replaced.models
    for model_key in sorted(set(a_models) | set(b_models)):
        a, b = a_models.get(model_key), b_models.get(model_key)
        if a is None or b is None:
            there = b if a is None else a
            where = REPLACED if a is None else SQUASH
            assert there is not None
            out.append(
                f"model {there.app_label}.{there.name}: only after {where} "
                f"(fields: {', '.join(there.fields)})"
            )
            continue
        out += _diff_model(a, b)
    return out


def _diff_model(a: ModelState, b: ModelState) -> list[str]:
    name = f"{a.app_label}.{a.name}"
    out: list[str] = []
    for fname in sorted(set(a.fields) | set(b.fields), key=lambda f: (f not in a.fields, f)):
        fa, fb = a.fields.get(fname), b.fields.get(fname)
        if fa is None or fb is None:
            there = fb if fa is None else fa
            assert there is not None
            where = REPLACED if fa is None else SQUASH
            out.append(f"field {name}.{fname}: only after {where}: {_show(*_field(there))}")
            continue
        (pa, ka), (pb, kb) = _field(fa), _field(fb)
        if pa != pb:
            out.append(
                f"field {name}.{fname}: {_show(pa, ka)} after {SQUASH}, {_show(pb, kb)} "
                f"after {REPLACED}"
            )
            continue
        for arg in sorted(set(ka) | set(kb)):
            unset = object()
            va, vb = ka.get(arg, unset), kb.get(arg, unset)
            if va is unset or vb is unset or _deconstructed(va) != _deconstructed(vb):
                shown_a = f"{arg} not set" if va is unset else f"{arg}={va!r}"
                shown_b = f"{arg} not set" if vb is unset else f"{arg}={vb!r}"
                out.append(
                    f"field {name}.{fname}: {shown_a} after {SQUASH}, {shown_b} after {REPLACED}"
                )
    for option in ("indexes", "constraints"):
        out += _diff_named(name, option, a.options.get(option, []), b.options.get(option, []))
    skip = {"indexes", "constraints"}
    for option in sorted((set(a.options) | set(b.options)) - skip):
        va, vb = a.options.get(option), b.options.get(option)
        if option.endswith("_together"):
            va, vb = _normal_together(va or []), _normal_together(vb or [])
        if va != vb:
            out.append(
                f"model {name}: Meta.{option}={va!r} after {SQUASH}, {option}={vb!r} "
                f"after {REPLACED}"
            )
    bases_a = [_base(x) for x in a.bases]
    bases_b = [_base(x) for x in b.bases]
    if bases_a != bases_b:
        out.append(f"model {name}: bases {bases_a} after {SQUASH}, {bases_b} after {REPLACED}")
    managers_a = [(m, _deconstructed(v)) for m, v in a.managers]
    managers_b = [(m, _deconstructed(v)) for m, v in b.managers]
    if managers_a != managers_b:
        out.append(
            f"model {name}: managers {[m for m, _ in managers_a]} after {SQUASH}, "
            f"{[m for m, _ in managers_b]} after {REPLACED}"
        )
    return out


def _base(value: Any) -> str:
    if isinstance(value, str):
        return value.lower()
    return f"{value.__module__}.{value.__qualname__}"


def _diff_named(model: str, option: str, a: list[Any], b: list[Any]) -> list[str]:
    kind = option[:-1] if option == "constraints" else "index"
    by_a = {getattr(x, "name", None) or repr(_deconstructed(x)): x for x in a}
    by_b = {getattr(x, "name", None) or repr(_deconstructed(x)): x for x in b}
    out = []
    for name in sorted(set(by_a) | set(by_b)):
        xa, xb = by_a.get(name), by_b.get(name)
        if xa is None or xb is None:
            where = REPLACED if xa is None else SQUASH
            out.append(f"{kind} {name} on {model}: only after {where}: {xa or xb!r}")
        elif _deconstructed(xa) != _deconstructed(xb):
            out.append(f"{kind} {name} on {model}: {xa!r} after {SQUASH}, {xb!r} after {REPLACED}")
    return out


# --------------------------------------------------------------------------- RunPython/RunSQL


def describe_operation(operation: Any) -> str:
    if isinstance(operation, RunPython):
        code = operation.code
        return (
            f"RunPython({getattr(code, '__module__', '?')}.{getattr(code, '__qualname__', code)})"
        )
    if isinstance(operation, RunSQL):
        sql = operation.sql
        text = sql if isinstance(sql, str) else "; ".join(str(s) for s in sql)
        text = " ".join(text.split())
        return f"RunSQL({text[:120] + ('...' if len(text) > 120 else '')!r})"
    return type(operation).__name__


def _special_key(operation: Any) -> str:
    """Equal for the same RunPython (by function name: a squash may carry a ported copy) or
    the same RunSQL (by its SQL, whitespace aside)."""
    if isinstance(operation, RunPython):
        names = [
            getattr(f, "__qualname__", repr(f)) for f in (operation.code, operation.reverse_code)
        ]
        return f"RunPython({', '.join(names)})"
    return "RunSQL(" + " ".join(str(operation.sql).split()) + ")"


def ddl_in(sql: Any) -> list[str]:
    """The statement kinds of ``sql`` that change the schema (empty: data only, or unparsable)."""
    import pglast

    texts = [sql] if isinstance(sql, str) else [s if isinstance(s, str) else s[0] for s in sql]
    kinds: list[str] = []
    for text in texts:
        try:
            statements = pglast.parse_sql(text)
        except Exception:
            continue
        for raw in statements:
            name = type(raw.stmt).__name__
            if name not in _DATA_STATEMENTS:
                kinds.append(name)
    return kinds


_DATA_STATEMENTS = {
    "InsertStmt",
    "UpdateStmt",
    "DeleteStmt",
    "SelectStmt",
    "CopyStmt",
    "MergeStmt",
    "TransactionStmt",
    "VariableSetStmt",
    "LockStmt",
    "NotifyStmt",
    "DoStmt",
    "CallStmt",
    "ExplainStmt",
    "VacuumStmt",
}


def _special_operations(source: MigrationLoader, found: Paths) -> tuple[list[str], list[str]]:
    """(differences, elided): RunPython/RunSQL of the replaced migrations against the squash's.

    An elidable one the squash lacks is listed as what it will not re-run (and is a
    difference when its SQL changes the schema); a non-elidable one the squash lacks is a
    difference; so is one the squash has that no replaced migration had."""
    squash_ops: dict[Any, int] = {}
    for operation in node(source, found.squash).operations:
        if isinstance(operation, RunPython | RunSQL):
            squash_ops[_special_key(operation)] = squash_ops.get(_special_key(operation), 0) + 1
    differences: list[str] = []
    elided: list[str] = []
    for key in found.replaced:
        for operation in node(source, key).operations:
            if not isinstance(operation, RunPython | RunSQL):
                continue
            op_key = _special_key(operation)
            if squash_ops.get(op_key, 0) > 0:
                squash_ops[op_key] -= 1
                continue
            shown = f"{fmt(key)}: {describe_operation(operation)}"
            if not operation.elidable:
                differences.append(f"{shown} is not elidable, and the squash does not run it")
                continue
            elided.append(shown)
            if isinstance(operation, RunSQL):
                kinds = ddl_in(operation.sql)
                if kinds:
                    differences.append(
                        f"{shown} is elidable but changes the schema ({', '.join(kinds)}): "
                        "the squash does not run it"
                    )
    for op_key, count in squash_ops.items():
        if count > 0:
            differences.append(f"the squash runs {op_key[:160]} that none of {REPLACED} runs")
    return differences, elided
