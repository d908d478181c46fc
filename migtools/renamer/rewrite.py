"""Formatting-preserving edits of Python source by AST positions.

Only the string literals that name a migration are touched: the span of each literal is
replaced by the same literal (same quotes, same prefix) holding the new name, so a diff of
the edited file shows the changed names and nothing else.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Key = tuple[str, str]

MIGRATION_ATTRS = ("dependencies", "run_before", "replaces")
TEST_ATTRS = ("migrate_from", "migrate_to")


@dataclass(frozen=True)
class Edit:
    """Replace the byte span ``start:end`` of the UTF-8 source with ``text``."""

    start: int
    end: int
    text: str


class _Source:
    """Source text with AST (line, byte column) positions mapped to byte offsets."""

    def __init__(self, source: str) -> None:
        self.text = source
        self.data = source.encode("utf-8")
        self.line_starts = [0]
        for index, byte in enumerate(self.data):
            if byte == 0x0A:
                self.line_starts.append(index + 1)

    def span(self, node: ast.expr) -> tuple[int, int]:
        assert node.end_lineno is not None and node.end_col_offset is not None
        start = self.line_starts[node.lineno - 1] + node.col_offset
        end = self.line_starts[node.end_lineno - 1] + node.end_col_offset
        return start, end

    def literal_edit(self, node: ast.expr, old: str, new: str) -> Edit | None:
        """An edit turning the string literal ``node`` (value ``old``) into ``new``."""
        if not (isinstance(node, ast.Constant) and node.value == old) or old == new:
            return None
        start, end = self.span(node)
        raw = self.data[start:end].decode("utf-8")
        # One plain literal (any quotes, any prefix): the value sits between the quotes.
        index = raw.find(old)
        if index < 0 or raw.count(old) != 1 or len(raw) - len(old) > 8:
            return None  # implicit concatenation or escapes: leave it alone
        return Edit(start, end, raw[:index] + new + raw[index + len(old) :])


def apply(source: str, edits: Iterable[Edit]) -> str:
    """``source`` with every edit applied (edits must not overlap)."""
    data = source.encode("utf-8")
    out: list[bytes] = []
    position = 0
    for edit in sorted(edits, key=lambda e: e.start):
        if edit.start < position:
            raise ValueError(f"overlapping edits at byte {edit.start}")
        out.append(data[position : edit.start])
        out.append(edit.text.encode("utf-8"))
        position = edit.end
    out.append(data[position:])
    return b"".join(out).decode("utf-8")


def _class_assignments(
    tree: ast.Module, names: tuple[str, ...]
) -> Iterable[tuple[ast.ClassDef, str, ast.expr]]:
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt in node.body:
            targets: list[ast.expr] = []
            value: ast.expr | None = None
            if isinstance(stmt, ast.Assign):
                targets, value = list(stmt.targets), stmt.value
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                targets, value = [stmt.target], stmt.value
            for target in targets:
                if isinstance(target, ast.Name) and target.id in names and value is not None:
                    yield node, target.id, value


def _pair(node: ast.expr) -> tuple[ast.expr, ast.expr] | None:
    if isinstance(node, ast.Tuple | ast.List) and len(node.elts) == 2:
        return node.elts[0], node.elts[1]
    return None


def _const(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def migration_edits(
    source: str,
    renames: Mapping[Key, Key],
    relinks: Mapping[Key, Key] | None = None,
) -> list[Edit]:
    """Edits renaming every ``(app, name)`` entry of ``dependencies``, ``run_before`` and
    ``replaces`` found in ``renames``; ``relinks`` (same shape) applies to ``dependencies``
    only, for the one migration whose parent changes."""
    src = _Source(source)
    tree = ast.parse(source)
    edits: list[Edit] = []
    for _klass, attr, value in _class_assignments(tree, MIGRATION_ATTRS):
        if not isinstance(value, ast.List | ast.Tuple):
            continue
        for element in value.elts:
            pair = _pair(element)
            if pair is None:
                continue
            app, name = _const(pair[0]), _const(pair[1])
            if app is None or name is None:
                continue
            target = renames.get((app, name))
            if target is None and relinks and attr == "dependencies":
                target = relinks.get((app, name))
            if target is None:
                continue
            for node, old, new in ((pair[0], app, target[0]), (pair[1], name, target[1])):
                edit = src.literal_edit(node, old, new)
                if edit is not None:
                    edits.append(edit)
    return edits


def test_edits(
    source: str,
    renames: Mapping[Key, Key],
    new_parents: Mapping[Key, tuple[Key, Key]],
) -> list[Edit]:
    """Edits for migration tests (``migrate_from``/``migrate_to`` class attributes).

    ``migrate_to`` follows ``renames``. ``migrate_from`` follows ``renames`` too, except in a
    test whose ``migrate_to`` is a key of ``new_parents`` (old key -> (old parent, new parent))
    and whose ``migrate_from`` is that old parent: it then moves to the new parent, so the test
    still starts right before the migration it tests.

    Values may be a name (the app comes from an ``app = "..."`` in the same class, else the
    name must be unique among the renamed migrations), an ``(app, name)`` pair, or a list of
    pairs.
    """
    src = _Source(source)
    tree = ast.parse(source)
    edits: list[Edit] = []
    apps_by_name: dict[str, set[str]] = {}
    for app, name in [*renames, *(old for old, _new in new_parents.values())]:
        apps_by_name.setdefault(name, set()).add(app)
    classes: dict[ast.ClassDef, dict[str, ast.expr]] = {}
    for klass, attr, value in _class_assignments(tree, TEST_ATTRS):
        classes.setdefault(klass, {})[attr] = value
    for klass, attrs in classes.items():
        class_app = _class_app(klass)

        def keyed(value: ast.expr, class_app: str | None = class_app) -> list[tuple[Key, ast.expr]]:
            found = []
            for app_node, name_node in _test_targets(value):
                name = _const(name_node)
                if name is None:
                    continue
                app = _const(app_node) if app_node is not None else class_app
                if app is None:
                    candidates = apps_by_name.get(name, set())
                    if len(candidates) != 1:
                        continue
                    app = next(iter(candidates))
                found.append(((app, name), name_node))
            return found

        to_keys = keyed(attrs["migrate_to"]) if "migrate_to" in attrs else []
        from_table = dict(renames)
        for key, _node in to_keys:
            if key in new_parents:
                old_parent, new_parent = new_parents[key]
                from_table[old_parent] = new_parent
        for attr, table in (("migrate_to", renames), ("migrate_from", from_table)):
            if attr not in attrs:
                continue
            for key, node in keyed(attrs[attr]):
                target = table.get(key)
                if target is not None:
                    edit = src.literal_edit(node, key[1], target[1])
                    if edit is not None:
                        edits.append(edit)
    return edits


def _class_app(klass: ast.ClassDef) -> str | None:
    for stmt in klass.body:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "app" for t in stmt.targets
        ):
            return _const(stmt.value)
    return None


def _test_targets(value: ast.expr) -> list[tuple[ast.expr | None, ast.expr]]:
    if _const(value) is not None:
        return [(None, value)]
    pair = _pair(value)
    if pair is not None and _const(pair[0]) is not None:
        return [pair]
    if isinstance(value, ast.List | ast.Tuple):
        found: list[tuple[ast.expr | None, ast.expr]] = []
        for element in value.elts:
            inner = _pair(element)
            if inner is not None:
                found.append(inner)
        return found
    return []
