"""Turns migration files that Django's writer produced into the migtools form.

Django's ``MigrationWriter`` offers no hook for the base class or extra attributes, so the
commands let Django write the file and then edit it here, by AST positions: the base class
becomes ``CheckedMigration`` and an explicit ``is_post_deployment`` (with a comment block on
when to set it) is added. Everything else stays as Django wrote it.
"""

from __future__ import annotations

import ast
import importlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from migtools import source as pysource
from migtools.graph import disk as graph

GUIDANCE = """\
    # migtools: is_post_deployment says when this migration runs.
    # False: before the new code is deployed (`migrate --pre-deploy`). It must finish fast
    #   and hold locks only briefly.
    # True: after the deploy, for slow work: data migrations over large tables, index
    #   builds on big tables, anything that can run for minutes.
    # Keep this attribute when you edit the file: migtools checks that it is stated.
"""

# Attributes a migration object may carry that Django's writer does not render.
PRESERVED = ("is_post_deployment", "checked", "atomic", "ignore_rules")

Snapshot = dict[Path, tuple[int, int]]


def snapshot(app_labels: Iterable[str]) -> Snapshot:
    """(mtime_ns, size) of every migration file of the given apps."""
    importlib.invalidate_caches()
    result: Snapshot = {}
    for label in app_labels:
        _module, directory = graph.locate(label)
        if directory is None or not directory.is_dir():
            continue
        for entry in os.scandir(directory):
            if entry.name.endswith(".py") and entry.name[0] not in "_~" and entry.is_file():
                stat = entry.stat()
                result[Path(entry.path)] = (stat.st_mtime_ns, stat.st_size)
    return result


def written_since(before: Snapshot, app_labels: Iterable[str]) -> list[Path]:
    after = snapshot(app_labels)
    return sorted(path for path, stamp in after.items() if before.get(path) != stamp)


def attributes_of(migration: object) -> dict[str, object]:
    """The migtools-relevant attributes a loaded migration object states."""
    result: dict[str, object] = {}
    for name in PRESERVED:
        for klass in type(migration).__mro__:
            if klass.__module__.startswith("django.") or klass.__module__.startswith("migtools."):
                break
            if name in vars(klass):
                result[name] = vars(klass)[name]
                break
    return result


def needs_name(changes: Mapping[str, Iterable[object]]) -> bool:
    """Whether ``MIGTOOLS_REQUIRE_NAME`` asks for ``-n``: some migration got a name Django
    made up from its operations. An app's first migrations (``0001_initial``, and the further
    ``initial`` ones of a new app with circular foreign keys) are named for what they are."""
    return any(
        not (getattr(m, "initial", False) or getattr(m, "name", "") == "0001_initial")
        for migrations in changes.values()
        for m in migrations
    )


def needs_non_atomic(operations: Iterable[object]) -> bool:
    """True when the operations build lock-light DDL on a table they do not create: indexes
    (built CONCURRENTLY), FK/CHECK/unique constraints (NOT VALID, then VALIDATE), NOT NULL (via
    a validated CHECK). Those only help outside a transaction, so the migration must not be
    atomic (migtools' backend refuses them in an atomic one)."""
    from django.db.migrations import operations as ops

    operations = list(operations)
    created = {op.name_lower for op in operations if isinstance(op, ops.CreateModel)}
    for op in operations:
        model = getattr(op, "model_name_lower", None)
        if model is None and isinstance(op, ops.AlterUniqueTogether | ops.AlterIndexTogether):
            model = op.name_lower
        if model is None or model in created:
            continue
        if isinstance(op, ops.AddIndex | ops.AddConstraint | ops.AlterUniqueTogether):
            return True
        if isinstance(op, ops.AlterIndexTogether):
            return True
        if isinstance(op, ops.AddField | ops.AlterField):
            field = op.field
            indexed = bool(getattr(field, "db_index", False)) or field.unique
            if indexed or (field.is_relation and not field.many_to_many):
                return True
            if isinstance(op, ops.AlterField) and not field.null:
                return True
    return False


def _offset(lines: list[str], lineno: int, col: int) -> int:
    return sum(len(line) for line in lines[: lineno - 1]) + len(
        lines[lineno - 1].encode("utf-8")[:col].decode("utf-8")
    )


def to_checked(source: str, attributes: Mapping[str, object] | None = None) -> str:
    """Return ``source`` with its ``Migration`` class in the migtools form.

    Files already subclassing ``CheckedMigration`` are returned unchanged.
    """
    attrs = {"is_post_deployment": False, **(attributes or {})}
    tree = ast.parse(source)
    klass = next(
        (s for s in tree.body if isinstance(s, ast.ClassDef) and s.name == "Migration"), None
    )
    if klass is None or len(klass.bases) != 1:
        return source
    base = klass.bases[0]
    if ast.unparse(base) != "migrations.Migration":
        return source
    lines = source.splitlines(keepends=True)
    start = _offset(lines, base.lineno, base.col_offset)
    end = _offset(lines, base.end_lineno or base.lineno, base.end_col_offset or 0)
    body_at = _offset(lines, klass.lineno + 1, 0) if klass.lineno < len(lines) else len(source)
    block = ["\n", GUIDANCE, f"    is_post_deployment = {attrs.pop('is_post_deployment')!r}\n"]
    block += [f"    {name} = {value!r}\n" for name, value in attrs.items()]
    new = source[:start] + "CheckedMigration" + source[end:body_at] + "".join(block)
    new += source[body_at:]
    imports = [s for s in tree.body if isinstance(s, ast.Import | ast.ImportFrom)]
    insert_line = (imports[-1].end_lineno or imports[-1].lineno) if imports else 0
    new_lines = new.splitlines(keepends=True)
    new_lines.insert(insert_line, "from migtools import CheckedMigration\n")
    return "".join(new_lines)


def convert_file(path: Path, attributes: Mapping[str, object] | None = None) -> bool:
    """Rewrite one generated file in place; True when it changed."""
    source = pysource.read(path)
    new = to_checked(source, attributes)
    if new == source:
        return False
    path.write_bytes(pysource.encode(new, like=path))
    return True
