"""The package's layout (GUIDE "Layout"): arrows between capability folders point one way.

Every module of ``migtools/`` is parsed (imports inside functions and ``TYPE_CHECKING``
blocks included) and each import of another part of the package becomes an arrow between
units: a folder (``safety``, ``verifier``...) or a top-level module (``conf``, ``errors``...).
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "migtools"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _unit(module: str) -> str:
    """``migtools.safety.editor`` -> ``safety``; ``migtools.conf`` -> ``conf``;
    ``migtools`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> set[str]:
    """The ``migtools.*`` modules (or names) ``path`` imports, anywhere in it."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target == "migtools":
                found.update(f"migtools.{alias.name}" for alias in node.names)
            else:
                found.add(target)
    return {name for name in found if name == "migtools" or name.startswith("migtools.")}


def import_graph() -> dict[str, dict[str, set[str]]]:
    """unit -> {imported unit: {importing files}} (arrows inside one unit left out)."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _unit(_module_name(path))
        arrows = graph.setdefault(source, {})
        for target in map(_unit, _imports(path)):
            if target != source:
                arrows.setdefault(target, set()).add(str(path.relative_to(PACKAGE.parent)))
    return graph


def _cycle(graph: dict[str, dict[str, set[str]]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(unit: str) -> list[str] | None:
        state[unit] = 1
        path.append(unit)
        for target in sorted(graph.get(unit, {})):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[unit] = 2
        return None

    for unit in sorted(graph):
        if unit not in state:
            found = visit(unit)
            if found:
                return found
    return None


def test_the_graph_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    graph = import_graph()
    # ``migtools.rules.scope`` imports the disk graph inside a function only.
    assert "migtools/rules/scope.py" in graph["rules"]["graph"]
    assert graph["conf"].keys() == {"errors", "pyproject"}


def test_no_cycle_between_capability_folders() -> None:
    graph = import_graph()
    cycle = _cycle(graph)
    if cycle:
        detail = "; ".join(
            f"{a} -> {b} ({', '.join(sorted(graph[a][b]))})" for a, b in itertools.pairwise(cycle)
        )
        raise AssertionError(f"import cycle {' -> '.join(cycle)}: {detail}")


def test_commands_are_imported_by_nothing_but_the_commands() -> None:
    graph = import_graph()
    importers = {
        unit: sorted(arrows["management"])
        for unit, arrows in graph.items()
        if "management" in arrows
    }
    assert importers == {}


def test_errors_and_conf_sit_at_the_bottom() -> None:
    graph = import_graph()
    assert graph["errors"] == {}
    # pyproject: the base directory rule the settings-free CLI shares (Django-free)
    assert set(graph["pyproject"]) <= {"errors"}
    assert set(graph["conf"]) <= {"errors", "pyproject"}


def test_a_cycle_is_found() -> None:
    graph = {"a": {"b": {"x"}}, "b": {"c": {"y"}}, "c": {"a": {"z"}}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b": set()}, "b": {}}) is None


def test_commands_write_no_exit_code_themselves() -> None:
    """Exit codes come from ``migtools/errors.py`` only: no command passes a literal
    ``returncode=`` (``migtools/management/base.py`` maps the error's own)."""
    literal: list[str] = []
    for path in sorted((PACKAGE / "management" / "commands").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "returncode":
                literal.append(f"{path.name}:{node.value.lineno}")
    assert literal == []
