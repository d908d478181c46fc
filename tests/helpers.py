"""Shared test helpers: temporary migration packages and a migration-file renderer."""

from __future__ import annotations

import importlib
import json
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from django.test.utils import override_settings

# A dependency/replaces/run_before entry: a (app_label, name) key, or raw Python source
# for the expression (e.g. "migrations.swappable_dependency(settings.AUTH_USER_MODEL)").
Dep = tuple[str, str] | str

STYLES = ("tuple", "list", "annassign", "checked")


def _key_source(dep: Dep, style: str) -> str:
    if isinstance(dep, str):
        return dep
    if style == "tuple":
        return f"({dep[0]!r}, {dep[1]!r})"
    if style == "list":
        return f"({json.dumps(dep[0])}, {json.dumps(dep[1])},)"
    # Keys must stay tuples: Django's graph hashes them.
    return f"({json.dumps(dep[0])},{json.dumps(dep[1])})"


def _seq_source(name: str, deps: Sequence[Dep], style: str) -> str:
    items = [_key_source(d, style) for d in deps]
    if style == "tuple":
        body = ", ".join(items) + ("," if len(items) == 1 else "")
        return f"    {name} = ({body})\n"
    if style == "annassign":
        return f"    {name}: list[tuple[str, str]] = [{', '.join(items)}]\n"
    # "list" and "checked": one item a line, trailing commas.
    if not items:
        return f"    {name} = []\n"
    lines = "".join(f"        {item},\n" for item in items)
    return f"    {name} = [\n{lines}    ]\n"


def render_migration(
    deps: Sequence[Dep] = (),
    replaces: Sequence[Dep] = (),
    run_before: Sequence[Dep] = (),
    initial: bool | None = None,
    style: str = "list",
    prelude: str = "",
) -> str:
    """Source text of a migration file, written in one of several layouts.

    ``tuple``: tuples and single quotes; ``list``: multi-line lists, double quotes, trailing
    commas; ``annassign``: annotated assignments, compact keys; ``checked``: a
    ``migtools.CheckedMigration`` subclass. Empty ``replaces``/``run_before`` are omitted
    (the class attribute default then applies), except in the ``tuple`` style.
    """
    if style not in STYLES:
        raise ValueError(style)
    head = "from django.conf import settings\nfrom django.db import migrations\n"
    base = "migrations.Migration"
    if style == "checked":
        head += "\nfrom migtools import CheckedMigration\n"
        base = "CheckedMigration"
    body = ""
    if style == "checked":
        body += "    is_post_deployment = False\n"
    if initial is not None:
        body += f"    initial = {initial}\n"
    body += _seq_source("dependencies", deps, style)
    if replaces or style == "tuple":
        body += _seq_source("replaces", replaces, style)
    if run_before or style == "tuple":
        body += _seq_source("run_before", run_before, style)
    body += "    operations = []\n"
    return f"{head}{prelude}\n\nclass Migration({base}):\n{body}"


def migration_module_name() -> str:
    return f"migtools_tmp_{uuid.uuid4().hex[:12]}"


@contextmanager
def temp_migrations_module(
    tmp_path: Path, apps: Mapping[str, Mapping[str, str | None]]
) -> Iterator[dict[str, Path]]:
    """Write one migrations package per app label under a uniquely named package in
    ``tmp_path``, put ``tmp_path`` on ``sys.path`` and point ``MIGRATION_MODULES`` at them.

    ``apps`` maps a label to ``{file name: source}``; a file name ending in ``/`` makes a
    sub-directory (a package when its source is not None). Yields the label -> directory map.
    On exit, ``sys.path``, the import caches and every imported temp module are cleaned up.
    """
    package = migration_module_name()
    root = tmp_path / package
    root.mkdir()
    (root / "__init__.py").write_text("", encoding="utf-8")
    modules: dict[str, str] = {}
    directories: dict[str, Path] = {}
    for label, files in apps.items():
        directory = root / label
        directory.mkdir()
        (directory / "__init__.py").write_text("", encoding="utf-8")
        for name, source in files.items():
            if name.endswith("/"):
                sub = directory / name.rstrip("/")
                sub.mkdir()
                if source is not None:
                    (sub / "__init__.py").write_text(source, encoding="utf-8")
                continue
            (directory / name).write_text(source or "", encoding="utf-8")
        modules[label] = f"{package}.{label}"
        directories[label] = directory
    entry = str(tmp_path)
    sys.path.insert(0, entry)
    importlib.invalidate_caches()
    try:
        with override_settings(MIGRATION_MODULES=modules):
            yield directories
    finally:
        sys.path.remove(entry)
        sys.path_importer_cache.pop(entry, None)
        for name in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
            del sys.modules[name]
        importlib.invalidate_caches()
