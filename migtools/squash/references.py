"""Migration tests that name given migrations (``migrate_from``/``migrate_to``), read with
``ast`` (never imported)."""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

Key = tuple[str, str]

ATTRS = ("migrate_from", "migrate_to")


@dataclass(frozen=True)
class Reference:
    path: Path
    line: int
    owner: str  # the test class
    attr: str  # migrate_from or migrate_to
    key: Key


def _const(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _assignments(klass: ast.ClassDef) -> dict[str, ast.expr]:
    found: dict[str, ast.expr] = {}
    for stmt in klass.body:
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
            found[stmt.target.id] = stmt.value
    return found


def _names(value: ast.expr, app: str | None) -> Iterable[tuple[Key, int]]:
    name = _const(value)
    if name is not None and app is not None:
        yield (app, name), value.lineno
        return
    if isinstance(value, ast.Tuple | ast.List):
        elements = value.elts
        if len(elements) == 2 and _const(elements[0]) is not None:
            first, second = _const(elements[0]), _const(elements[1])
            if first is not None and second is not None:
                yield (first, second), value.lineno
                return
        for element in elements:
            if isinstance(element, ast.Tuple | ast.List) and len(element.elts) == 2:
                first, second = _const(element.elts[0]), _const(element.elts[1])
                if first is not None and second is not None:
                    yield (first, second), element.lineno


def find(files: Iterable[Path], keys: Collection[Key], default_app: str | None) -> list[Reference]:
    """Every ``migrate_from``/``migrate_to`` in ``files`` naming one of ``keys``."""
    names = {k[1] for k in keys}
    out: list[Reference] = []
    for path in files:
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if not any(name in source for name in names):
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        classes = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
        for klass in classes.values():
            values = _assignments(klass)
            app = _const(values.get("app"))
            if app is None:
                for base in klass.bases:
                    if isinstance(base, ast.Name) and base.id in classes:
                        app = _const(_assignments(classes[base.id]).get("app"))
            app = app or default_app
            for attr in ATTRS:
                if attr not in values:
                    continue
                for key, line in _names(values[attr], app):
                    if key in keys:
                        out.append(Reference(path, line, klass.name, attr, key))
    return out
