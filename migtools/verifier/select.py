"""Which migrations a verifier run judges: the plan, the managed apps, APP [NAME], ``--files``
(named migration files), ``--since REF [--until REF]`` (files changed since a git ref) and
``--unapplied``.

A selection that comes from git's history or from named files (``--files``, ``--until``: the
pre-commit hooks and CI) judges exactly that change: migration files git does not track and
that are not named (a draft beside the commit) are left out of the graph as well.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from django.apps import apps as django_apps
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration as DjangoMigration

from migtools import project
from migtools.errors import (
    GitRepoError,
    GraphError,
    NoMigrationsError,
    UnknownAppError,
    UnknownMigrationError,
    UsageError,
)
from migtools.graph import baseline
from migtools.graph.disk import paused_gc
from migtools.rules.scope import in_baseline

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration

    from migtools.gitrepo import GitRepo
    from migtools.graph.disk import MigrationFile

Node = tuple[str, str]
Progress = Callable[[int, int], None]


def load(
    connection: BaseDatabaseWrapper,
    *,
    replace: bool = True,
    keep: Collection[str] | None = None,
    lazy: bool = False,
) -> MigrationLoader:
    """The migration graph; offline (``migtools.verifier.offline``) no applied migration is
    read (Django's loader without a connection). With ``keep`` (resolved paths), migration
    files below the repository that git does not track are left out unless kept (see the
    module docstring). With ``lazy``, the graph is read from the files with ``ast``
    (``migtools.graph.disk``) and no migration module is imported: each node is a stand-in
    until :func:`realize` imports it (the verifier imports only what it judges or has to
    replay)."""
    from migtools.verifier import offline

    kept = None if keep is None else frozenset(keep)
    if lazy and kept is None:
        planned = _planned(None if offline.is_offline(connection) else connection)
        if planned is not None:
            return planned

    class _Loader(MigrationLoader):
        def load_disk(self) -> None:
            stand_ins = _draft_stand_ins(self, kept) if kept is not None else {}
            read = _read_apps(set(stand_ins)) if lazy else {}
            skip.update(read)
            sys.modules.update(stand_ins)
            try:
                super().load_disk()
            finally:
                skip.clear()
                for name, module in stand_ins.items():
                    if sys.modules.get(name) is module:
                        del sys.modules[name]
            for key, migration in list(self.disk_migrations.items()):
                if isinstance(migration, _Draft):
                    del self.disk_migrations[key]
            for label, files in read.items():
                self.unmigrated_apps.discard(label)
                self.migrated_apps.add(label)
                for name, make in files.items():
                    self.disk_migrations[label, name] = make(name, label)

        @classmethod
        def migrations_module(cls, app_label: str) -> tuple[str | None, bool]:
            if app_label in skip:  # read with ast instead (``_read_apps``)
                return None, False
            return super().migrations_module(app_label)

    skip: set[str] = set()
    loader_class: type[MigrationLoader] = _Loader if (kept is not None or lazy) else MigrationLoader
    with paused_gc():  # thousands of nodes that stay alive: no collection needed meanwhile
        if offline.is_offline(connection):
            return loader_class(None, replace_migrations=replace)
        return loader_class(connection, replace_migrations=replace)


class _Draft(DjangoMigration):
    """Stands in for a draft migration file while Django's loader lists the directory, so the
    draft is never imported (a half-written one may not even parse); then dropped."""


class _Lazy(DjangoMigration):
    """Stands in for a migration not imported yet: what the graph needs (read with ``ast``)
    and where the real one is (:func:`realize`)."""

    module_name = ""
    source_file = ""


def _lazy_factory(
    module_name: str, source_file: str, parsed: MigrationFile
) -> Callable[[str, str], DjangoMigration]:
    def make(name: str, app_label: str) -> DjangoMigration:
        # What ``Migration.__init__`` sets, without its copies of the class attributes
        # (thousands of stand-ins per run).
        migration = _Lazy.__new__(_Lazy)
        vars(migration).update(
            name=name,
            app_label=app_label,
            operations=[],
            dependencies=list(parsed.dependencies),
            replaces=list(parsed.replaces),
            run_before=list(parsed.run_before),
            initial=parsed.initial,
            module_name=module_name,
            source_file=source_file,
        )
        return migration

    return make


def _read_apps(drafts: Collection[str]) -> dict[str, dict[str, Callable[[str, str], Any]]]:
    """``{app label: {migration name: stand-in factory}}`` for every installed app whose
    migrations ``ast`` can read (an app with a file too dynamic to read, or that Django
    would not load as a package, is left to Django's loader). ``drafts``: module names left
    out."""
    from migtools.graph import disk

    found: dict[str, dict[str, Callable[[str, str], Any]]] = {}
    for config in django_apps.get_app_configs():
        module_name, directory = disk.locate(config.label)
        if module_name is None or directory is None:
            continue
        try:
            app = disk.read_directory(config.label, module_name, directory)
        except GraphError:  # Django's import reports it as Django does
            continue
        if app.warnings or not app.files:
            continue
        real = os.path.realpath(directory)
        links = _symlinks(real)
        files: dict[str, Callable[[str, str], Any]] = {}
        for name, parsed in app.files.items():
            full = f"{module_name}.{name}"
            if full in drafts:
                continue
            path = os.path.join(real, f"{name}.py")
            if name in links:
                path = os.path.realpath(path)
            files[name] = _lazy_factory(full, path, parsed)
        found[config.label] = files
    return found


def _symlinks(directory: str) -> set[str]:
    """The module names of the ``.py`` files of ``directory`` that are symbolic links (one
    listing, rather than a ``stat`` per file)."""
    try:
        with os.scandir(directory) as entries:
            return {e.name[:-3] for e in entries if e.name.endswith(".py") and e.is_symlink()}
    except OSError:
        return set()


class _PlannedGraph:
    """What the verifier asks of Django's ``MigrationGraph``, for a graph read with ``ast``
    (:func:`_planned`): the nodes, the leaves and the plan."""

    def __init__(
        self, nodes: dict[Node, DjangoMigration], children: dict[Node, set[Node]], plan: list[Node]
    ) -> None:
        self.nodes = nodes
        self.children = children
        self.plan = plan

    def leaf_nodes(self, app: str | None = None) -> list[Node]:
        return sorted(
            key
            for key in self.nodes
            if (app is None or key[0] == app) and all(c[0] != key[0] for c in self.children[key])
        )


class _PlannedLoader(MigrationLoader):
    """A ``MigrationLoader`` whose graph was read with ``ast`` and planned without Django's
    graph (:func:`_planned`); every node is a stand-in until :func:`realize`."""

    def __init__(
        self,
        connection: BaseDatabaseWrapper | None,
        graph: _PlannedGraph,
        migrated: set[str],
        unmigrated: set[str],
    ) -> None:
        # Django's __init__ would build the graph: what it sets is set here instead.
        self.connection = connection
        self.disk_migrations = dict(graph.nodes)
        self.graph = graph
        self.migrated_apps = migrated
        self.unmigrated_apps = unmigrated
        self.replace_migrations = True
        self.ignore_no_migrations = False
        self.replacements = {}
        self.applied_migrations = {}
        if connection is not None:
            from django.db.migrations.recorder import MigrationRecorder

            recorder = MigrationRecorder(connection)
            self.applied_migrations = recorder.applied_migrations()  # type: ignore[assignment]


def _planned(connection: BaseDatabaseWrapper | None) -> MigrationLoader | None:
    """The loader of a history every file of which ``ast`` reads (the parse cache and this
    process's reading make it cheap), with the plan Django's graph would give, computed
    from the graph on disk (``migtools.graph.disk``) without building Django's graph. None
    (Django's loader decides) on any doubt: a file too dynamic to read, a squash
    (``replaces``: what is used depends on what is applied), ``run_before``, a migrations
    package without migrations, a ``MIGRATION_MODULES`` entry that does not exist, a graph
    Django would refuse."""
    from django.conf import settings

    from migtools.errors import MigtoolsError
    from migtools.graph import disk

    read = _read_apps(frozenset())
    explicit = getattr(settings, "MIGRATION_MODULES", {}) or {}
    migrated: set[str] = set()
    unmigrated: set[str] = set()
    for config in django_apps.get_app_configs():
        label = config.label
        if label in read:
            migrated.add(label)
            continue
        module, directory = disk.locate(label)
        if module is None or (directory is None and label not in explicit):
            unmigrated.add(label)  # as Django's loader finds it: no migrations package
            continue
        return None
    try:
        graphs = [disk.load()]  # the system checks' reading (managed apps and what they reach)
        missing = migrated - set(graphs[0].apps) - set(graphs[0].context)
        if missing:  # and the others (with what they reach): edges never cross out of either
            graphs.append(disk.load(sorted(missing)))
    except (MigtoolsError, LookupError):
        return None
    everything: dict[str, disk.AppMigrations] = {}
    parents: dict[Node, set[Node]] = {}
    children: dict[Node, set[Node]] = {}
    for graph in graphs:
        everything.update(graph.context)
        everything.update(graph.apps)
        for key, found in graph.parents.items():
            parents.setdefault(key, set()).update(found)
        for key, found in graph.children.items():
            children.setdefault(key, set()).update(found)
    if not migrated <= set(everything):
        return None
    files = [f for label in migrated for f in everything[label].files.values()]
    if any(f.replaces or f.run_before for f in files):
        return None
    nodes: dict[Node, DjangoMigration] = {}
    for label in migrated:
        for name, make in read[label].items():
            nodes[label, name] = make(name, label)
    if set(nodes) != {f.key for f in files}:
        return None
    if set(parents) != set(nodes):
        return None
    planned = _PlannedGraph(nodes, children, [])
    planned.plan = _plan(planned.leaf_nodes(), parents)
    if len(planned.plan) != len(nodes):
        return None
    return _PlannedLoader(connection, planned, migrated, unmigrated)


def _plan(leaves: list[Node], parents: dict[Node, set[Node]]) -> list[Node]:
    """:func:`full_plan` on the graph on disk: Django's depth-first walk from each leaf in
    turn, parents in sorted order."""
    plan: list[Node] = []
    seen: set[Node] = set()
    for leaf in leaves:
        stack = [(leaf, False)]
        while stack:
            key, processed = stack.pop()
            if key in seen:
                continue
            if processed:
                seen.add(key)
                plan.append(key)
            else:
                stack.append((key, True))
                stack += [(parent, False) for parent in sorted(parents[key])]
    return plan


def realize(loader: MigrationLoader, nodes: Iterable[Node]) -> None:
    """Import the migrations of ``nodes`` that a lazy loader (:func:`load`) left as
    stand-ins, in place in the graph."""
    graph_nodes = loader.graph.nodes
    for node in nodes:
        migration = graph_nodes.get(node)
        if not isinstance(migration, _Lazy):
            continue
        module = importlib.import_module(migration.module_name)
        real = module.Migration(migration.name, migration.app_label)
        graph_nodes[node] = real
        loader.disk_migrations[node] = real


def _draft_stand_ins(loader: MigrationLoader, keep: frozenset[str]) -> dict[str, ModuleType]:
    """``{module name: stand-in}`` for every migration file of an installed app that git
    neither tracks nor ignores and that ``keep`` does not name."""
    try:
        repo = _repo()
    except GitRepoError:  # not a git checkout: nothing is a draft
        return {}
    packages: dict[Path, str] = {}
    for config in django_apps.get_app_configs():
        module_name, _explicit = loader.migrations_module(config.label)
        if module_name is None:
            continue
        try:
            spec = importlib.util.find_spec(module_name)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            directory = Path(location).resolve()
            if directory.is_relative_to(repo.root):
                packages[directory] = module_name
    stand_ins: dict[str, ModuleType] = {}
    for path in repo.untracked_in(packages):
        package = packages.get(path.parent)
        if package is None or path.suffix != ".py" or str(path) in keep:
            continue
        name = f"{package}.{path.stem}"
        module = ModuleType(name)
        module.Migration = _Draft  # type: ignore[attr-defined]
        module.__file__ = str(path)
        stand_ins[name] = module
    return stand_ins


def _repo() -> GitRepo:
    from migtools.gitrepo import GitRepo

    return GitRepo.find(project.root())


def full_plan(loader: MigrationLoader) -> list[Node]:
    """Every node of the graph in an order that respects dependencies (Django's forwards plan
    of each leaf, merged)."""
    if isinstance(loader.graph, _PlannedGraph):
        return list(loader.graph.plan)
    # Django's depth-first walk (``MigrationGraph.iterative_dfs``) from each leaf in turn,
    # not re-entering what an earlier leaf's walk planned: every ancestor of a planned node
    # is planned, so the order is the one the merged plans give, in one pass over the graph.
    graph = loader.graph
    plan: list[Node] = []
    seen: set[Node] = set()
    for leaf in sorted(graph.leaf_nodes()):
        stack = [(graph.node_map[leaf], False)]
        while stack:
            node, processed = stack.pop()
            if node.key in seen:
                continue
            if processed:
                seen.add(node.key)
                plan.append(node.key)
            else:
                stack.append((node, True))
                stack += [(parent, False) for parent in sorted(node.parents)]
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
    # --since: the git checkout it was read from (asked again for edited-after-merge).
    repo: GitRepo | None = None


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
        if app_label not in loader.migrated_apps:
            raise NoMigrationsError(app_label)
        labels = {app_label}
    else:
        labels = set(default_apps())
    nodes = {n for n in loader.graph.nodes if n[0] in labels}
    if app_label is None:
        # MIGTOOLS_BASELINE: history adopted as it is (naming the app verifies it anyway).
        adopted = baseline.effective()
        nodes = {n for n in nodes if n[0] not in adopted or not in_baseline(loader.graph.nodes[n])}
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
        repo = out.repo = _repo()
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
    if isinstance(migration, _Lazy):
        return migration.source_file
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
