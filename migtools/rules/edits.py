"""Whether a migration file's edit changes what the migration does (the
``migration-edited-after-merge`` rule): both versions are parsed and compared as syntax trees,
so whitespace, comments, docstrings, imports and migtools-only attributes do not count."""

from __future__ import annotations

import ast

# Class attributes that change how migtools judges a migration, not what it does.
MIGTOOLS_ONLY = frozenset({"is_post_deployment", "ignore_rules", "checked"})


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _migtools_only(node: ast.stmt) -> bool:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign):
        targets = [node.target]
    names = [t.id for t in targets if isinstance(t, ast.Name)]
    return bool(names) and len(names) == len(targets) and set(names) <= MIGTOOLS_ONLY


class _Strip(ast.NodeTransformer):
    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
            kept = [s for s in body if not _is_docstring(s)]
            node.body = kept or [ast.Pass()]  # type: ignore[attr-defined]
        return node


def meaning(source: str) -> str | None:
    """What a migration file does, as one canonical dump: the module without imports and
    docstrings, its ``Migration`` class without its bases (``Migration`` or
    ``CheckedMigration``) and migtools-only attributes. None when the file does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    body: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) or _is_docstring(node):
            continue
        if isinstance(node, ast.ClassDef) and node.name == "Migration":
            node.bases = []
            node.body = [s for s in node.body if not _migtools_only(s)] or [ast.Pass()]
        body.append(node)
    module = _Strip().visit(ast.Module(body=body, type_ignores=[]))
    return ast.dump(module, annotate_fields=False, include_attributes=False)


def edited(before: str, after: str) -> bool:
    """True when ``after`` does something ``before`` did not (or either does not parse and
    the texts differ)."""
    old, new = meaning(before), meaning(after)
    if old is None or new is None:
        return before != after
    return old != new
