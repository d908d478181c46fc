"""Where an app's migrations live: the module name and directory, found as Django's loader
finds them, without importing the package (a leaf of ``migtools.graph``: the reader and the
loader-error diagnosis both ask it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def locate(app_label: str) -> tuple[str | None, Path | None]:
    """The app's migrations module name and directory, without importing the package."""
    from django.db.migrations.loader import MigrationLoader

    module, _explicit = MigrationLoader.migrations_module(app_label)
    if module is None:
        return None, None
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        return module, None
    if spec is None or not spec.submodule_search_locations:
        return module, None  # missing, or a module (``migrations.py``): unmigrated for Django
    if spec.origin is None or not spec.has_location:
        # A directory without ``__init__.py`` is a namespace package, which Django's
        # MigrationLoader (5.2 through 6.1) treats as an unmigrated app: skip it too.
        return module, None
    locations = list(spec.submodule_search_locations)
    return module, Path(locations[0]) if locations else None
