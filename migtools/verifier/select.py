"""Which migrations a verifier run judges: the plan, the managed apps, APP [NAME], ``--files``
(named migration files), ``--since REF [--until REF]`` (files changed since a git ref) and
``--unapplied``.

A selection that comes from git's history or from named files (``--files``, ``--until``: the
pre-commit hooks and CI) judges exactly that change: migration files git does not track and
that are not named (a draft beside the commit) are left out of the graph as well.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from django.apps import apps as django_apps
from django.db.migrations.loader import MigrationLoader

from migtools import project
from migtools.errors import GitRepoError, UnknownAppError, UnknownMigrationError, UsageError
from migtools.safety.policy import in_baseline

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration

    from migtools.gitrepo import GitRepo

Node = tuple[str, str]
Progress = Callable[[int, int], None]


def load(
    connection: BaseDatabaseWrapper,
    *,
    replace: bool = True,
    keep: Collection[str] | None = None,
) -> MigrationLoader:
    """The migration graph; offline (``migtools.verifier.offline``) no applied migration is
    read (Django's loader without a connection). With ``keep`` (resolved paths), migration
    files below the repository that git does not track are left out unless kept (see the
    module docstring)."""
    from migtools.verifier import offline

    if keep is None:
        loader_class: type[MigrationLoader] = MigrationLoader
    else:
        kept = frozenset(keep)

        class _CommittedLoader(MigrationLoader):
            def load_disk(self) -> None:
                super().load_disk()
                _leave_out_drafts(self, kept)

        loader_class = _CommittedLoader
    if offline.is_offline(connection):
        return loader_class(None, replace_migrations=replace)
    return loader_class(connection, replace_migrations=replace)


def _leave_out_drafts(loader: MigrationLoader, keep: frozenset[str]) -> None:
    paths = {key: path_of(m) for key, m in loader.disk_migrations.items()}
    directories = {Path(p).parent for p in paths.values() if p is not None}
    try:
        repo = _repo()
    except GitRepoError:  # not a git checkout: nothing is a draft
        return
    inside = {d for d in directories if d.is_relative_to(repo.root)}
    drafts = {str(p) for p in repo.untracked_in(inside)} - keep
    for key, path in paths.items():
        if path in drafts:
            del loader.disk_migrations[key]


def _repo() -> GitRepo:
    from migtools.gitrepo import GitRepo

    return GitRepo.find(project.root())


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


@dataclass
class Selection:
    """The selected nodes, and what the run needs to know about how they were chosen."""

    nodes: set[Node]
    # Nodes that deploy together (a table one creates is new in the later ones); None: all
    # of ``nodes`` when ``one_deploy``, else none (a full run).
    deploy: set[Node] | None = None
    one_deploy: bool = False
    # --since: the commit the change starts from (for migration-edited-after-merge).
    base: str | None = None
    changed: set[str] = field(default_factory=set)


def named_files(files: Sequence[str]) -> set[str]:
    """``--files``: each path resolved (relative to the current directory); a path that does
    not exist is bad usage (exit 2)."""
    resolved = set()
    for name in files:
        path = Path(name)
        if not path.exists():
            raise UsageError(f"--files: {name}: no such file.")
        resolved.add(str(path.resolve()))
    return resolved


def select(
    loader: MigrationLoader,
    *,
    app_label: str | None = None,
    name: str | None = None,
    since: str | None = None,
    until: str | None = None,
    files: Collection[str] | None = None,
    unapplied: bool = False,
) -> set[Node]:
    """The nodes to verify (see :func:`selection`)."""
    return selection(
        loader,
        app_label=app_label,
        name=name,
        since=since,
        until=until,
        files=files,
        unapplied=unapplied,
    ).nodes


def selection(
    loader: MigrationLoader,
    *,
    app_label: str | None = None,
    name: str | None = None,
    since: str | None = None,
    until: str | None = None,
    files: Collection[str] | None = None,
    unapplied: bool = False,
) -> Selection:
    """The nodes to verify. APP [NAME] narrows to one app (and one migration, by name or
    unique prefix); without APP, the managed apps. ``files`` (resolved paths): the migrations
    defined in them; ``since``: migrations whose files were added or changed since that git
    ref (up to ``until``, else the working tree); both: the migrations in both. ``unapplied``:
    migrations not recorded as applied.

    What deploys together: with ``since`` or ``unapplied``, every selected migration; with
    ``files`` alone, those the last commit (HEAD) does not hold yet: ``--all-files`` judges a
    committed history as production met it, a commit's new migrations as one deploy."""
    if until is not None and since is None:
        raise UsageError("--until needs --since.")
    if app_label is not None:
        try:
            django_apps.get_app_config(app_label)
        except LookupError:
            raise UnknownAppError(app_label) from None
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
    out = Selection(nodes, one_deploy=since is not None or unapplied)
    if files is not None:
        wanted = set(files)
        out.nodes = {n for n in out.nodes if path_of(loader.graph.nodes[n]) in wanted}
    if since is not None:
        repo = _repo()
        out.base = repo.base_of(since, until)
        out.changed = {str(p) for p in repo.changed_since(since, until)}
        out.nodes = {n for n in out.nodes if path_of(loader.graph.nodes[n]) in out.changed}
    elif files is not None and not unapplied:
        out.deploy = _not_committed(loader, out.nodes)
    return out


def _not_committed(loader: MigrationLoader, nodes: set[Node]) -> set[Node]:
    """Of ``nodes``, those whose file the last commit lacks (all of them before the first
    commit, or outside a git checkout)."""
    paths = {n: path_of(loader.graph.nodes[n]) for n in nodes}
    try:
        repo = _repo()
    except GitRepoError:
        return set(nodes)
    inside = {Path(p) for p in paths.values() if p and Path(p).is_relative_to(repo.root)}
    committed = {str(p) for p in repo.existing_at("HEAD", inside)}
    return {n for n, p in paths.items() if p not in committed}


def changed_files(ref: str, until: str | None = None) -> set[str]:
    """Absolute paths of files added or changed since ``ref`` (up to ``until``, else the
    working tree: committed, staged, unstaged or untracked), from the git checkout holding
    the project. A ref that does not exist is a :class:`~migtools.errors.GitRefError` (exit 2)
    carrying git's reason."""
    return {str(path) for path in _repo().changed_since(ref, until)}


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
