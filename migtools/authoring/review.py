"""What makemigrations is about to write, judged by the rule engine before a byte is written.

The migrations the autodetector produced are judged as the verifier would judge the files
(one deploy: a table one of them creates is new in the later ones), on the state the
migrations on disk build, with the configured database's SQL (or offline, as the verifier
runs offline). Each error-level finding then has a safe form or refuses:

- an index on a large table (``index-on-large-table-not-post-deployment``): the migration is
  written with ``is_post_deployment = True`` (``migrate --pre-deploy`` defers it; it is
  already non-atomic, so the migtools backend builds the index concurrently);
- anything else at error level: makemigrations refuses, nothing written, each finding with
  the recipe's first step and the ``--explain`` hint (``UnsafeModelChangeError``, exit 1).

So no rule added to the catalogue later can be written with an error by makemigrations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from django.db.utils import OperationalError

from migtools.errors import UnsafeModelChangeError
from migtools.migration import CheckedMigration
from migtools.rules.catalogue import Finding, Level, hint
from migtools.rules.engine import Engine, large_tables
from migtools.verifier import offline
from migtools.verifier.select import default_apps

if TYPE_CHECKING:
    from django.db.migrations.graph import MigrationGraph
    from django.db.migrations.migration import Migration
    from django.db.migrations.state import ProjectState

    from migtools.project import MigrationTests

Node = tuple[str, str]

#: The error with a safe form makemigrations writes itself.
LARGE_INDEX = "index-on-large-table-not-post-deployment"


@dataclass
class Review:
    """The verdict on the would-be migrations (keyed by ``(app_label, name)``)."""

    post_deployment: set[Node] = field(default_factory=set)  # written post-deployment
    large: dict[Node, list[str]] = field(default_factory=dict)  # their large tables
    refusals: list[tuple[str, Finding]] = field(default_factory=list)  # (shown path, finding)
    offline_line: str | None = None

    def raise_if_refused(self) -> None:
        if not self.refusals:
            return
        lines = [
            "makemigrations refused, nothing was written: the migration would hold "
            "error-level findings that have no safe form makemigrations can write. "
            "Make the change the fix names, then run makemigrations again:"
        ]
        if self.offline_line:
            lines.append(self.offline_line)
        seen: set[tuple[str, str, str]] = set()
        for shown, f in self.refusals:
            key = (shown, f.rule_id, f.message)
            if key in seen:
                continue
            seen.add(key)
            lines += [
                f"  - {shown} (not written): {f.level}: [{f.rule_id}] {f.message}",
                f"    fix: {f.rule.first_step}{_backend_note(f)}",
                f"    {hint(f.rule_id)}",
            ]
        raise UnsafeModelChangeError("\n".join(lines))


def _backend_note(f: Finding) -> str:
    """For SQL Django's own backend writes blocking: the migtools backend writes it safely."""
    from django.db import connections

    if f.rule_id not in _BACKEND_SOLVES:
        return ""
    engine = str(connections[f.database or "default"].settings_dict.get("ENGINE", ""))
    if engine.startswith("migtools."):
        return ""
    return (
        f" (DATABASES ENGINE is {engine!r}: 'migtools.db.backends.postgresql' writes this "
        "operation's lock-light form by itself)"
    )


_BACKEND_SOLVES = frozenset(
    {
        "index-not-concurrent",
        "fk-not-valid-missing",
        "check-constraint-not-valid-missing",
        "set-not-null",
        "unique-constraint-on-existing-table",
    }
)


def review(
    changes: Mapping[str, list[Migration]],
    graph: MigrationGraph,
    real_apps: Iterable[str],
    attributes: Mapping[Node, Mapping[str, object]],
    paths: Mapping[Node, Path],
    *,
    database: str = "default",
    replaced: Iterable[Node] = (),
    state: ProjectState | None = None,
) -> Review:
    """Judge ``changes`` (the autodetector's) before they are written, on ``graph`` (the
    history on disk; ``real_apps``: the apps without migrations). ``attributes``: what
    the writer will add to each file (``atomic``...); ``replaced``: leaves that ``--update``
    rewrites (the state is built without them); ``state``: the state at the leaves when the
    caller has it (the autodetector's ``from_state``: the history is not replayed twice)."""
    replaced = list(replaced)
    migrations = _ordered(changes)
    out = Review()
    if not any(m.operations for m in migrations):
        return out
    base = set(graph.leaf_nodes())
    for node in replaced:
        if node in base:
            base.discard(node)
            base |= {p.key for p in graph.node_map[node].parents}
    try:
        with offline.reachable_or_offline(database) as (connection, offline_run):
            tables = (
                offline.large_tables(database)
                if offline_run is not None
                else large_tables(connection)
            )
            engine = Engine(connection, large_tables=tables, managed=default_apps(), tests=_tests)
            if state is None or replaced:
                state = graph.make_state(
                    nodes=sorted(base),
                    at_end=True,
                    real_apps=cast(
                        Any, set(real_apps)
                    ),  # Django asserts a set (the stubs say list)
                )
            else:
                state = state.clone()
            new_tables: set[str] = set()
            for migration in migrations:
                node = (migration.app_label, migration.name)
                attrs = dict(attributes.get(node, {}))
                path = paths.get(node)
                before, tables_before = state.clone(), set(new_tables)
                findings = _judge(engine, migration, attrs, state, new_tables, path)
                errors = [f for f in findings if f.level is Level.ERROR]
                if any(f.rule_id == LARGE_INDEX for f in errors) and not attrs.get(
                    "is_post_deployment"
                ):
                    # The safe form: after the deploy (judged again as such).
                    out.post_deployment.add(node)
                    out.large[node] = sorted(
                        {t for f in errors if f.rule_id == LARGE_INDEX for t in _tables(f)}
                    )
                    attrs["is_post_deployment"] = True
                    state, new_tables = before, tables_before
                    findings = _judge(engine, migration, attrs, state, new_tables, path)
                    errors = [f for f in findings if f.level is Level.ERROR]
                shown = _shown(path) if path is not None else f"{node[0]}.{node[1]}"
                out.refusals += [(shown, f) for f in errors]
            if offline_run is not None:
                out.offline_line = offline_run.line()
    except OperationalError:
        # Neither reachable nor renderable offline: the findings of the written files say
        # so in one line (``lines_for_written``), as before.
        return Review()
    return out


def _judge(
    engine: Engine,
    migration: Migration,
    attrs: Mapping[str, object],
    state: ProjectState,
    new_tables: set[str],
    path: Path | None,
) -> list[Finding]:
    """Judge ``migration`` as the file the writer produces (a CheckedMigration with the
    attributes it will state); ``state`` and ``new_tables`` advance."""
    body: dict[str, Any] = {
        "operations": list(migration.operations),
        "dependencies": list(migration.dependencies),
        "initial": migration.initial,
        "is_post_deployment": bool(attrs.get("is_post_deployment", False)),
        "__module__": f"{migration.app_label}.migrations.{migration.name}",
    }
    for name in ("atomic", "checked", "ignore_rules"):
        if name in attrs:
            body[name] = attrs[name]
    klass = type("Migration", (CheckedMigration,), body)
    proxy = klass(migration.name, migration.app_label)
    judged = engine.judge(proxy, state, new_tables, path=str(path) if path else None)
    return judged.findings


def _tests() -> MigrationTests:
    """The migration tests of the repository (for ``data-migration-without-test``)."""
    from migtools import conf as mt_settings
    from migtools import project

    files = project.find_test_files(mt_settings.migration_test_dirs(), project.root())
    return project.read_migration_tests(files, mt_settings.default_app())


def _tables(f: Finding) -> list[str]:
    import re

    return re.findall(r"large table '([^']+)'", f.message)


def _ordered(changes: Mapping[str, list[Migration]]) -> list[Migration]:
    """The new migrations, each after the new ones it depends on."""
    pending = [m for migrations in changes.values() for m in migrations]
    keys = {(m.app_label, m.name) for m in pending}
    done: set[Node] = set()
    out: list[Migration] = []
    while pending:
        ready = [
            m
            for m in pending
            if all(tuple(d) in done or tuple(d) not in keys for d in m.dependencies)
        ] or pending[:1]
        for m in ready:
            out.append(m)
            done.add((m.app_label, m.name))
            pending.remove(m)
    return out


def _shown(path: Path) -> str:
    import os

    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative
