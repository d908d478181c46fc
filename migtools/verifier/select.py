"""Which migrations a verifier run judges: the plan, the managed apps, APP [NAME], ``--since``
(files changed since a git ref) and ``--unapplied``."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.apps import apps as django_apps
from django.db.migrations.loader import MigrationLoader

from migtools import project
from migtools.errors import NoMigrationsError, UnknownAppError, UnknownMigrationError
from migtools.rules.scope import in_baseline

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration

Node = tuple[str, str]
Progress = Callable[[int, int], None]


def load(connection: BaseDatabaseWrapper, *, replace: bool = True) -> MigrationLoader:
    """The migration graph; offline (``migtools.verifier.offline``) no applied migration is
    read (Django's loader without a connection)."""
    from migtools.verifier import offline

    if offline.is_offline(connection):
        return MigrationLoader(None, replace_migrations=replace)
    return MigrationLoader(connection, replace_migrations=replace)


def full_plan(loader: MigrationLoader) -> list[Node]:
    """Every node of the graph in an order that respects dependencies (Django's forwards plan
    of each leaf, merged)."""
    plan: list[Node] = []
    seen: set[Node] = set()
    for leaf in sorted(loader.graph.leaf_nodes()):
        for node in loader.graph.forwards_plan(leaf):
            if node not in seen:
                seen.add(node)
                plan.append(node)
    return plan


def default_apps() -> list[str]:
    return [c.label for c in project.managed_apps()]


def select(
    loader: MigrationLoader,
    *,
    app_label: str | None = None,
    name: str | None = None,
    since: str | None = None,
    unapplied: bool = False,
) -> set[Node]:
    """The nodes to verify. APP [NAME] narrows to one app (and one migration, by name or
    unique prefix); without APP, the managed apps. ``since``: migrations whose files were added
    or changed since that git ref; ``unapplied``: migrations not recorded as applied."""
    if app_label is not None:
        try:
            django_apps.get_app_config(app_label)
        except LookupError:
            raise UnknownAppError(app_label) from None
        if app_label not in loader.migrated_apps:
            raise NoMigrationsError(app_label)
        labels = {app_label}
    else:
        labels = set(default_apps())
    nodes = {n for n in loader.graph.nodes if n[0] in labels}
    if app_label is None:
        # MIGTOOLS_BASELINE: history adopted as it is (naming the app verifies it anyway).
        nodes = {n for n in nodes if not in_baseline(loader.graph.nodes[n])}
    if name is not None:
        assert app_label is not None
        matches = [n for n in nodes if n[1] == name] or [n for n in nodes if n[1].startswith(name)]
        if len(matches) != 1:
            what = "More than one migration matches" if matches else "Cannot find a migration"
            raise UnknownMigrationError(f"{what} {name!r} in app {app_label!r}.")
        nodes = set(matches)
    if unapplied:
        nodes -= set(loader.applied_migrations or {})
    if since is not None:
        changed = changed_files(since)
        nodes = {n for n in nodes if path_of(loader.graph.nodes[n]) in changed}
    return nodes


def changed_files(ref: str) -> set[str]:
    """Absolute paths of files added or changed since ``ref`` (committed, staged, unstaged or
    untracked), from the git checkout holding the project. A ref that does not exist is a
    :class:`~migtools.errors.GitRefError` (exit 2) carrying git's reason."""
    from migtools.gitrepo import GitRepo

    return {str(path) for path in GitRepo.find(project.root()).changed_since(ref)}


def path_of(migration: Migration) -> str | None:
    """The migration's file, resolved as ``Path.resolve()`` does (each directory is resolved
    once per process: a project's migrations share a handful of them)."""
    module = sys.modules.get(type(migration).__module__)
    file = getattr(module, "__file__", None)
    if not file:
        return None
    file = str(file)
    directory, name = os.path.split(file)
    if not os.path.isabs(directory):
        return os.path.realpath(file)
    path = os.path.join(_real_directory(directory), name)
    return os.path.realpath(path) if os.path.islink(path) else path


@functools.cache
def _real_directory(directory: str) -> str:
    return os.path.realpath(directory)
