"""Renumber a branch's migrations after main's: plan every edit first, then apply them all or none.

A :class:`Plan` is computed entirely in memory: which migrations move (the branch's whole chain in
each app, in order, after the leaf of main's side), their new names (same number width, growing
when needed: ``0099`` -> ``0100``, ``9999`` -> ``10000``), the new source of every file that names a
moved migration (any app, migration tests included), test files named after a moved migration,
and the lockfile. The graph the plan leaves behind is built and checked (one leaf per app, no
cycle) before anything is written. :func:`apply` then validates that nothing changed on disk
since, writes, and restores every byte (index included) if any step fails.
"""

from __future__ import annotations

import difflib
import itertools
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from migtools import conf as mt_settings
from migtools import project
from migtools.errors import (
    AppliedMigrationsError,
    ConflictError,
    GraphError,
    LockfileError,
    MigtoolsError,
    RenumberError,
    RenumberWriteError,
    UsageError,
)
from migtools.gitrepo import REBASE, GitRepo
from migtools.graph import lockfile
from migtools.graph.disk import (
    AppMigrations,
    DiskGraph,
    MigrationFile,
    parse_migration_source,
    read_app,
)
from migtools.project import find_test_files
from migtools.renamer import rewrite

Key = tuple[str, str]

_NUMBER = re.compile(r"^(\d+)(.*)$")
_SQUASHED = re.compile(r"_squashed_(\d+)")


def fmt(key: Key) -> str:
    return f"{key[0]}.{key[1]}"


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Rename:
    """One migration file that gets a new name."""

    app_label: str
    old: str
    new: str
    old_path: Path
    new_path: Path

    @property
    def old_key(self) -> Key:
        return (self.app_label, self.old)

    @property
    def new_key(self) -> Key:
        return (self.app_label, self.new)


@dataclass(frozen=True)
class Change:
    """One file of the plan: moved from ``source`` to ``path`` and/or given new content.

    ``old_text`` None: the file does not exist yet. ``new_text`` None: the file is deleted.
    """

    source: Path
    path: Path
    old_text: str | None
    new_text: str | None
    stage: bool = True

    @property
    def moved(self) -> bool:
        return self.source != self.path


@dataclass
class AppPlan:
    """What happens to one app: the chain that moves and where it lands."""

    app_label: str
    main_leaf: str | None
    chain: list[str]
    new_names: list[str]
    old_parent: str | None
    # chain members forked from main's side next to an earlier member: their same-app
    # dependencies on main's side -> the previous member (old names)
    linearised: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return (
            self.chain != self.new_names
            or bool(self.linearised)
            or (bool(self.chain) and self.old_parent != self.main_leaf)
        )


@dataclass
class Plan:
    apps: list[AppPlan]
    renames: list[Rename]
    changes: list[Change]
    lockfile_path: Path
    new_graph: DiskGraph
    moved: list[Key]  # old keys of every migration that moves (renamed or relinked), in order
    map_fixes: list[str] = field(default_factory=list)  # references fixed from the rename map
    stage_lockfile: bool = False
    root: Path | None = None

    @property
    def empty(self) -> bool:
        return not self.changes and not self.stage_lockfile

    @property
    def rename_table(self) -> dict[Key, Key]:
        return {r.old_key: r.new_key for r in self.renames}

    def relative(self, path: Path) -> str:
        if self.root is not None:
            try:
                return path.resolve().relative_to(self.root).as_posix()
            except ValueError:
                pass
        return str(path)

    def diff(self) -> str:
        """A unified diff of every change (git's rename header for moved files)."""
        chunks: list[str] = []
        for change in self.changes:
            old_rel, new_rel = self.relative(change.source), self.relative(change.path)
            if change.moved:
                chunks.append(
                    f"diff --git a/{old_rel} b/{new_rel}\nrename from {old_rel}\n"
                    f"rename to {new_rel}\n"
                )
            old_lines = (change.old_text or "").splitlines(keepends=True)
            new_lines = (change.new_text or "").splitlines(keepends=True)
            if old_lines == new_lines:
                continue
            for line in difflib.unified_diff(
                old_lines,
                new_lines,
                fromfile=f"a/{old_rel}" if change.old_text is not None else "/dev/null",
                tofile=f"b/{new_rel}" if change.new_text is not None else "/dev/null",
            ):
                chunks.append(
                    line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                )
        return "".join(chunks)


# --------------------------------------------------------------------------- inputs


@dataclass
class Inputs:
    """Everything a plan is computed from (read once)."""

    apps: dict[str, AppMigrations]
    mine: set[Key]
    lockfile_path: Path
    lockfile_text: str | None
    lockfile_sides: lockfile.ConflictSides | None
    lockfile_unmerged: bool
    test_files: list[Path]
    rename_map: dict[str, dict[str, str]]
    in_rebase: bool
    rename_map_path: Path | None
    main: str = "main"
    root: Path | None = None


def number_of(name: str) -> tuple[int, int] | None:
    """(number, width) of a migration name's numeric prefix."""
    match = _NUMBER.match(name)
    if match is None:
        return None
    return int(match.group(1)), len(match.group(1))


def gather(repo: GitRepo, main: str | None = None) -> Inputs:
    """Read the managed apps, the git state, the lockfile and the test files."""
    main_ref = repo.main_branch(main if main is not None else mt_settings.main_branch())
    apps = {c.label: read_app(c.label) for c in project.managed_apps()}
    files: dict[Path, dict[str, Key]] = {}
    for app in apps.values():
        if app.directory is None or not app.files:
            continue
        directory = app.directory.resolve()
        repo.relative(directory)  # outside the repository: refuse early
        names = files.setdefault(directory, {})
        for mig in app.files.values():
            names[f"{mig.name}.py"] = mig.key
    mine_files = repo.mine_names(main_ref, files)
    mine = {files[d][n] for d, names in mine_files.items() for n in names}
    lock_path = project.lockfile_path().resolve()
    try:
        lock_text: str | None = lock_path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        lock_text = None
    sides = None
    unmerged = False
    if lock_text is not None and lockfile.has_conflict_markers(lock_text):
        sides = lockfile.split_conflict(lock_text, str(lock_path))
    stages = repo.unmerged_stages(lock_path)
    if stages is not None:
        unmerged = True
        if sides is None and stages.ours is not None and stages.theirs is not None:
            sides = lockfile.ConflictSides(
                ours=_parse_side(stages.ours), theirs=_parse_side(stages.theirs), base=None
            )
    state = repo.state()
    return Inputs(
        apps=apps,
        mine=mine,
        lockfile_path=lock_path,
        lockfile_text=lock_text,
        lockfile_sides=sides,
        lockfile_unmerged=unmerged,
        test_files=find_test_files(mt_settings.migration_test_dirs(), repo.root),
        rename_map=repo.read_rename_map(),
        in_rebase=state == REBASE,
        rename_map_path=repo.rename_map_path,
        main=main_ref,
        root=repo.root,
    )


def _parse_side(text: str) -> dict[str, str]:
    try:
        return lockfile.split_conflict(text).ours
    except LockfileError:
        return {}


# --------------------------------------------------------------------------- selecting


def select(inputs: Inputs, migration: str, app_label: str | None) -> Key:
    """The migration named by ``migration`` (full name, number or unique substring)."""
    if app_label is not None:
        label = project.app_config(app_label).label
        if label not in inputs.apps:
            raise UsageError(
                f"App '{label}' is not managed by migtools (MIGTOOLS_APPS lists the managed apps)."
            )
        labels = [label]
    else:
        labels = sorted(inputs.apps)
    keys = [
        key
        for label in labels
        for key in ((label, name) for name in sorted(inputs.apps[label].files))
    ]
    candidates = [k for k in keys if k[1] == migration]
    if not candidates and migration.isdigit():
        candidates = [
            k for k in keys if (n := number_of(k[1])) is not None and n[0] == int(migration)
        ]
    if not candidates:
        candidates = [k for k in keys if migration in k[1]]
    if len(candidates) > 1:
        mine = [k for k in candidates if k in inputs.mine]
        if mine:
            candidates = mine
    where = f" in app '{labels[0]}'" if app_label is not None else " in the managed apps"
    if not candidates:
        raise RenumberError(f"No migration matches '{migration}'{where}.")
    if len(candidates) > 1:
        listing = "\n".join(f"  {fmt(k)}" for k in candidates)
        raise RenumberError(
            f"'{migration}' matches several migrations{where}; give the full name or the app "
            f"label:\n{listing}"
        )
    key = candidates[0]
    if key not in inputs.mine:
        raise RenumberError(
            f"Migration {fmt(key)} is already on {inputs.main}: only migrations that your branch "
            "adds can be moved."
        )
    return key


def conflicted_apps(inputs: Inputs, graph: DiskGraph) -> list[str]:
    """Apps with several leaves, plus apps whose lockfile lines conflict in git."""
    labels = {label for label, leaves in leaves_by_app(graph).items() if len(leaves) > 1}
    sides = inputs.lockfile_sides
    if sides is not None:
        for label in set(sides.ours) | set(sides.theirs):
            if sides.ours.get(label) != sides.theirs.get(label) and label in inputs.apps:
                labels.add(label)
    return sorted(labels)


# --------------------------------------------------------------------------- planning


class _Workspace:
    """Migration sources as the plan edits them, in memory."""

    def __init__(self, inputs: Inputs) -> None:
        self.inputs = inputs
        self.files: dict[Key, MigrationFile] = {
            f.key: f for app in inputs.apps.values() for f in app.files.values()
        }
        self.original: dict[Path, str] = {}
        self.text: dict[Path, str] = {}

    def source(self, path: Path) -> str:
        if path not in self.text:
            self.original[path] = self.text[path] = path.read_text(encoding="utf-8")
        return self.text[path]

    def edit(self, key: Key, renames: Mapping[Key, Key], relinks: Mapping[Key, Key] | None) -> bool:
        mig = self.files[key]
        source = self.source(mig.path)
        edits = rewrite.migration_edits(source, renames, relinks)
        if not edits:
            return False
        new = rewrite.apply(source, edits)
        self.text[mig.path] = new
        self.files[key] = parse_migration_source(new, mig.path, key[0], key[1])
        return True

    def graph(self, renames: Mapping[Key, Rename] | None = None) -> DiskGraph:
        apps = []
        for label, app in self.inputs.apps.items():
            files: dict[str, MigrationFile] = {}
            for name in app.files:
                mig = self.files[(label, name)]
                rename = renames.get(mig.key) if renames else None
                if rename is not None:
                    mig = replace(mig, name=rename.new, path=rename.new_path)
                files[mig.name] = mig
            apps.append(AppMigrations(label, app.module, app.directory, files, list(app.warnings)))
        return DiskGraph(apps)


def leaves_by_app(graph: DiskGraph) -> dict[str, list[str]]:
    """Every asked-for app's leaves in one pass over the graph (``graph.leaves`` per app
    walks every node each time)."""
    found: dict[str, list[str]] = {label: [] for label in graph.apps}
    for key, children in graph.children.items():
        names = found.get(key[0])
        if (
            names is not None
            and key in graph.parents
            and not any(child[0] == key[0] for child in children)
        ):
            names.append(key[1])
    return {label: sorted(names) for label, names in found.items()}


def lockfile_entries(graph: DiskGraph) -> dict[str, str]:
    """What :func:`lockfile.expected` returns, in one pass; raises ConflictError likewise."""
    leaves = leaves_by_app(graph)
    conflicts = {label: names for label, names in leaves.items() if len(names) > 1}
    if conflicts:
        raise ConflictError(conflicts)
    return {label: names[0] for label, names in leaves.items() if names}


def _refs(mig: MigrationFile) -> Iterable[Key]:
    yield from mig.dependencies
    yield from mig.run_before
    yield from mig.replaces


def _chain(graph: DiskGraph, label: str, mine: set[Key]) -> list[Key]:
    """The app's migrations that are mine, parents first (ties by name)."""
    nodes = [k for k in graph.nodes(label) if k in mine]
    members = set(nodes)
    waiting = {k: {p for p in graph.parents[k] if p in members} for k in nodes}
    order: list[Key] = []
    ready = sorted(k for k, ps in waiting.items() if not ps)
    while ready:
        key = ready.pop(0)
        order.append(key)
        for child in sorted(graph.children[key]):
            if child in waiting and key in waiting[child]:
                waiting[child].discard(key)
                if not waiting[child]:
                    ready.append(child)
                    ready.sort()
    return order


def _main_leaf(graph: DiskGraph, label: str, mine: set[Key]) -> str | None:
    theirs = [k for k in graph.nodes(label) if k not in mine]
    leaves = [
        k for k in theirs if not any(c[0] == label and c not in mine for c in graph.children[k])
    ]
    if len(leaves) > 1:
        names = ", ".join(k[1] for k in leaves)
        raise RenumberError(
            f"Main's side of app '{label}' has several leaf migrations itself ({names}): "
            "resolve that on main first."
        )
    return leaves[0][1] if leaves else None


def _next_number(inputs: Inputs, label: str, mine: set[Key]) -> int:
    highest = 0
    for name in inputs.apps[label].files:
        if (label, name) in mine:
            continue
        number = number_of(name)
        if number is not None:
            highest = max(highest, number[0])
        for squashed in _SQUASHED.findall(name):
            highest = max(highest, int(squashed))
    return highest + 1


def _plan_app(inputs: Inputs, graph: DiskGraph, work: _Workspace, label: str) -> AppPlan:
    mine = inputs.mine
    chain = _chain(graph, label, mine)
    main_leaf = _main_leaf(graph, label, mine)
    if not chain or main_leaf is None:
        return AppPlan(label, main_leaf, [], [], main_leaf)
    linearised: dict[str, str] = {}
    for previous, key in itertools.pairwise(chain):
        if previous in graph.parents[key]:
            continue
        forks = [
            d
            for d in work.files[key].dependencies
            if d[0] == label and d not in mine and d[1] != "__first__"
        ]
        if not forks:
            raise RenumberError(
                f"Your branch's migrations in app '{label}' are not one chain: {fmt(key)} does "
                f"not depend on {fmt(previous)}. Make each depend on the one before it, then "
                "run update_migration again."
            )
        # Forked from main's side next to an earlier branch migration: it goes after the
        # previous one in the chain instead.
        linearised[key[1]] = previous[1]
    first = work.files[chain[0]]
    bases = [
        d for d in first.dependencies if d[0] == label and d not in mine and d[1] != "__first__"
    ]
    old_parent = bases[0][1] if bases else None
    start = _next_number(inputs, label, mine)
    new_names = []
    for index, key in enumerate(chain):
        number = number_of(key[1])
        if number is None:
            new_names.append(key[1])
            continue
        suffix = _NUMBER.match(key[1]).group(2)  # type: ignore[union-attr]
        new_names.append(f"{start + index:0{number[1]}d}{suffix}")
    return AppPlan(label, main_leaf, [k[1] for k in chain], new_names, old_parent, linearised)


def plan(inputs: Inputs, migration: str | None = None, app_label: str | None = None) -> Plan:
    """Compute every change; raise :class:`RenumberError` (nothing written) when impossible."""
    work = _Workspace(inputs)
    map_fixes = _apply_rename_map(inputs, work)
    try:
        graph = work.graph()
    except GraphError as exc:
        raise RenumberError(f"The migration graph is broken, nothing was changed: {exc}") from None

    conflicts = {k: v for k, v in leaves_by_app(graph).items() if len(v) > 1}
    if migration is not None:
        selected = select(inputs, migration, app_label)
        labels = [selected[0]]
        others = {k: v for k, v in conflicts.items() if k != selected[0]}
        if others:
            detail = "; ".join(f"{', '.join(v)} in {k}" for k, v in sorted(others.items()))
            raise RenumberError(
                f"Other apps have conflicting migrations too ({detail}). Run "
                "'python manage.py update_migration' without arguments to resolve them all."
            )
    else:
        if app_label is not None:
            project.app_config(app_label)
        labels = conflicted_apps(inputs, graph)

    app_plans = [_plan_app(inputs, graph, work, label) for label in labels]
    renames: dict[Key, Rename] = {}
    relinks: dict[Key, dict[Key, Key]] = {}
    new_parents: dict[Key, tuple[Key, Key]] = {}
    moved: list[Key] = []
    for app_plan in app_plans:
        if not app_plan.changed:
            continue
        label = app_plan.app_label
        for old, new in zip(app_plan.chain, app_plan.new_names, strict=True):
            moved.append((label, old))
            if old != new:
                old_path = work.files[(label, old)].path
                renames[(label, old)] = Rename(
                    label, old, new, old_path, old_path.with_name(f"{new}.py")
                )
        new_name = dict(zip(app_plan.chain, app_plan.new_names, strict=True))
        for name, previous in app_plan.linearised.items():
            relinks[(label, name)] = {
                d: (label, new_name[previous])
                for d in work.files[(label, name)].dependencies
                if d[0] == label and d not in inputs.mine and d[1] != "__first__"
            }
        first = (label, app_plan.chain[0])
        assert app_plan.main_leaf is not None
        if app_plan.old_parent != app_plan.main_leaf:
            target = (label, app_plan.main_leaf)
            relinks[first] = {
                d: target
                for d in work.files[first].dependencies
                if d[0] == label and d not in inputs.mine and d[1] != "__first__"
            }
            if app_plan.old_parent is not None:
                new_parents[first] = ((label, app_plan.old_parent), target)

    table = {old: r.new_key for old, r in renames.items()}
    named = set(table)
    for key, mig in list(work.files.items()):
        if key in relinks or any(ref in named for ref in _refs(mig)):
            work.edit(key, table, relinks.get(key))

    try:
        new_graph = work.graph(renames)
        expected = lockfile_entries(new_graph)
    except GraphError as exc:
        raise RenumberError(
            f"Moving the migrations would break the graph, nothing was changed: {exc}"
        ) from None
    except MigtoolsError as exc:
        raise RenumberError(
            f"After the moves the graph would still conflict, nothing was changed: {exc}"
        ) from None

    changes: list[Change] = []
    root = inputs.root
    for path, new_text in work.text.items():
        old_text = work.original[path]
        dest = next((r.new_path for r in renames.values() if r.old_path == path), path)
        if new_text != old_text or dest != path:
            changes.append(Change(path, dest, old_text, new_text))
    done = {c.source for c in changes}
    for rename in renames.values():
        if rename.old_path not in done:
            text = rename.old_path.read_text(encoding="utf-8")
            changes.append(Change(rename.old_path, rename.new_path, text, text))
    changes.extend(_test_changes(inputs, table, new_parents))

    new_lock = lockfile.render(expected)
    if new_lock != inputs.lockfile_text and (
        labels or inputs.lockfile_sides is not None or changes
    ):
        changes.append(
            Change(inputs.lockfile_path, inputs.lockfile_path, inputs.lockfile_text, new_lock)
        )
    if changes or inputs.lockfile_unmerged:
        changes.extend(_rename_map_change(inputs, table))
    return Plan(
        apps=[p for p in app_plans if p.changed],
        renames=list(renames.values()),
        changes=changes,
        lockfile_path=inputs.lockfile_path,
        new_graph=new_graph,
        moved=moved,
        map_fixes=map_fixes,
        stage_lockfile=inputs.lockfile_unmerged,
        root=root,
    )


def _apply_rename_map(inputs: Inputs, work: _Workspace) -> list[str]:
    """Rewrite references to migrations renamed at an earlier stop of this rebase."""
    if not inputs.rename_map:
        return []
    table: dict[Key, Key] = {}
    for label, names in inputs.rename_map.items():
        for old, new in names.items():
            if (label, old) not in work.files and (label, new) in work.files:
                table[(label, old)] = (label, new)
    fixes = []
    for key, mig in list(work.files.items()):
        if any(ref in table for ref in _refs(mig)) and work.edit(key, table, None):
            refs = sorted({fmt(r) for r in _refs(mig) if r in table})
            fixes.append(f"{fmt(key)}: {', '.join(refs)} (renamed earlier in this rebase)")
    return fixes


def _test_changes(
    inputs: Inputs, table: Mapping[Key, Key], new_parents: Mapping[Key, tuple[Key, Key]]
) -> list[Change]:
    if not table and not new_parents:
        return []
    names = {k[1] for k in table} | {old[1] for old, _ in new_parents.values()}
    renamed_names = {k[1]: v[1] for k, v in table.items()}
    changes = []
    for path in inputs.test_files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        new_text = text
        if any(name in text for name in names):
            try:
                edits = rewrite.test_edits(text, table, new_parents)
            except SyntaxError:
                edits = []
            new_text = rewrite.apply(text, edits)
        target = path
        for old, new in renamed_names.items():
            if old in path.stem:
                target = path.with_name(path.name.replace(old, new))
                break
        if new_text != text or target != path:
            changes.append(Change(path, target, text, new_text))
    return changes


def _rename_map_change(inputs: Inputs, table: Mapping[Key, Key]) -> list[Change]:
    path = inputs.rename_map_path
    if path is None:
        return []
    try:
        old_text: str | None = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        old_text = None
    if not inputs.in_rebase:
        return [Change(path, path, old_text, None, stage=False)] if old_text is not None else []
    merged = {label: dict(names) for label, names in inputs.rename_map.items()}
    for (label, old), (_label, new) in table.items():
        names = merged.setdefault(label, {})
        for earlier, later in list(names.items()):
            if later == old:
                names[earlier] = new
        names[old] = new
    new_text = json.dumps(merged, indent=2, sort_keys=True) + "\n"
    if new_text == old_text:
        return []
    return [Change(path, path, old_text, new_text, stage=False)]


# --------------------------------------------------------------------------- applying


Step = Callable[[str], None]


def _write(path: Path, data: bytes, mode: int | None) -> None:
    tmp = path.with_name(f".{path.name}.migtools-tmp")
    tmp.write_bytes(data)
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)


def _check_unchanged(plan: Plan) -> None:
    sources = {c.source for c in plan.changes}
    for change in plan.changes:
        try:
            current: str | None = change.source.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current != change.old_text:
            raise RenumberError(
                f"{change.source} changed while update_migration ran; nothing "
                "was changed. Run it again."
            )
        if change.moved and change.path.exists() and change.path not in sources:
            raise RenumberError(
                f"Cannot rename {change.source.name} to {change.path.name}: "
                f"{change.path} already exists. Nothing was changed."
            )


def apply(plan: Plan, repo: GitRepo | None, before_step: Step | None = None) -> None:
    """Write the plan, all or nothing. ``before_step(description)`` runs before each write
    (tests make it raise to prove that every byte is restored)."""
    _check_unchanged(plan)
    step = before_step or (lambda _description: None)
    touched: set[Path] = set()
    for change in plan.changes:
        touched.add(change.source)
        touched.add(change.path)
    snapshot: dict[Path, tuple[bytes, int] | None] = {}
    for path in touched:
        try:
            snapshot[path] = (path.read_bytes(), path.stat().st_mode & 0o7777)
        except FileNotFoundError:
            snapshot[path] = None
    index: bytes | None = None
    if repo is not None and repo.index_path.exists():
        index = repo.index_path.read_bytes()
    try:
        _apply_steps(plan, repo, step)
    except BaseException as exc:
        _restore(snapshot, repo, index)
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise RenumberWriteError(
            f"Writing the changes failed ({type(exc).__name__}: {exc}); every file was "
            "restored, nothing changed."
        ) from exc


def _apply_steps(plan: Plan, repo: GitRepo | None, step: Step) -> None:
    tracked: set[Path] = set()
    if repo is not None:
        tracked = repo.tracked([c.source for c in plan.changes if c.stage])
    moves = [c for c in plan.changes if c.moved]
    sources = {c.source for c in moves}
    collide = any(c.path in sources for c in moves)
    pending: list[tuple[Change, Path]] = []
    for change in moves:
        via = change.path
        if collide:
            via = change.source.with_name(f".migtools-move-{change.source.name}")
        step(f"rename {change.source.name} -> {via.name}")
        _move(repo if change.source in tracked else None, change.source, via)
        pending.append((change, via))
    for change, via in pending:
        if via != change.path:
            step(f"rename {via.name} -> {change.path.name}")
            _move(repo if change.source in tracked else None, via, change.path)
    for change in plan.changes:
        if change.new_text is None:
            step(f"delete {change.path.name}")
            change.path.unlink(missing_ok=True)
        elif change.new_text != change.old_text:
            step(f"write {change.path.name}")
            mode = change.path.stat().st_mode & 0o7777 if change.path.exists() else 0o644
            _write(change.path, change.new_text.encode("utf-8"), mode)
    if repo is not None:
        # `git mv` staged the renames; stage the content of every tracked file written.
        stage = [c.path for c in plan.changes if c.source in tracked]
        if plan.stage_lockfile or plan.lockfile_path in tracked:
            stage.append(plan.lockfile_path)
        if stage:
            step("stage")
            repo.stage(stage)


def _move(repo: GitRepo | None, old: Path, new: Path) -> None:
    if repo is not None:
        repo.move(old, new)
    else:
        os.replace(old, new)


def _restore(
    snapshot: Mapping[Path, tuple[bytes, int] | None], repo: GitRepo | None, index: bytes | None
) -> None:
    for path, saved in snapshot.items():
        if saved is None:
            path.unlink(missing_ok=True)
            continue
        data, mode = saved
        try:
            if path.read_bytes() == data and path.stat().st_mode & 0o7777 == mode:
                continue
        except FileNotFoundError:
            pass
        _write(path, data, mode)
    for path in snapshot:
        leftover = path.with_name(f".migtools-move-{path.name}")
        leftover.unlink(missing_ok=True)
        path.with_name(f".{path.name}.migtools-tmp").unlink(missing_ok=True)
    if repo is not None and index is not None:
        _write(repo.index_path, index, None)


# --------------------------------------------------------------------------- verifying


def verify(plan: Plan) -> list[str]:
    """Problems left after applying: several leaves in an app, a stale lockfile.

    Every migration file the plan wrote is read back from disk and must hold what the plan's
    graph (checked before writing: one leaf per app, no cycle) says; the lockfile on disk must
    name each app's leaf in that graph.
    """
    problems: list[str] = []
    written = {c.path for c in plan.changes if c.new_text is not None}
    for label, app in plan.new_graph.apps.items():
        for name, planned in app.files.items():
            if planned.path not in written:
                continue
            try:
                source = planned.path.read_text(encoding="utf-8")
                actual = parse_migration_source(source, planned.path, label, name)
            except (OSError, GraphError) as exc:
                problems.append(f"{planned.path}: {exc}")
                continue
            if replace(actual, line=planned.line) != planned:
                problems.append(f"{planned.path} does not hold the planned dependencies")
    leaves = leaves_by_app(plan.new_graph)
    problems += [
        f"{label} still has several leaf migrations: {', '.join(names)}"
        for label, names in leaves.items()
        if len(names) > 1
    ]
    wanted = {label: names[0] for label, names in leaves.items() if names}
    try:
        actual_lock = lockfile.read(plan.lockfile_path)
    except MigtoolsError as exc:
        return [*problems, str(exc)]
    problems += [m.describe() for m in lockfile.compare(actual_lock, wanted)]
    return problems


# --------------------------------------------------------------------------- applied migrations


def applied_moved(plan: Plan, connection: Any) -> list[Key] | None:
    """Moved migrations that the database records as applied; None when the database cannot
    be reached (the caller says so: nothing was checked)."""
    from django.db import DatabaseError
    from django.db.migrations.recorder import MigrationRecorder

    if not plan.moved:
        return []
    try:
        recorder = MigrationRecorder(connection)
        if not recorder.has_table():
            return []
        applied = set(recorder.applied_migrations())
    except DatabaseError:
        return None
    return [key for key in plan.moved if key in applied]


def rollback_plan(plan: Plan, connection: Any) -> list[tuple[Any, bool]]:
    """The backwards plan that unapplies the moved migrations (and what depends on them) with
    the graph as it is on disk now; refuses when one of them is irreversible."""
    from django.db.migrations.executor import MigrationExecutor

    applied = applied_moved(plan, connection)
    if not applied:
        return []
    executor = MigrationExecutor(connection)
    graph = executor.loader.graph
    recorded = executor.loader.applied_migrations
    steps: list[tuple[Any, bool]] = []
    seen: set[Key] = set()
    for key in applied:
        for node in graph.backwards_plan(key):
            if node in recorded and node not in seen:
                seen.add(node)
                steps.append((graph.nodes[node], True))
    blocked = []
    for migration, _backwards in steps:
        for operation in migration.operations:
            if not operation.reversible:
                blocked.append(f"  {migration.app_label}.{migration.name}: {operation.describe()}")
    if blocked:
        raise AppliedMigrationsError(
            "Cannot roll back the applied migrations before renaming them: these operations "
            "are irreversible:\n" + "\n".join(blocked) + "\nNothing was changed. Unapply them "
            "by hand (or restore the database), then run update_migration again."
        )
    return steps


def roll_back(steps: list[tuple[Any, bool]], connection: Any) -> None:
    from django.db.migrations.executor import MigrationExecutor

    if not steps:
        return
    executor = MigrationExecutor(connection)
    executor.migrate([], plan=steps)


def refuse_applied(applied: list[Key]) -> AppliedMigrationsError:
    names = "\n".join(f"  {fmt(k)}" for k in applied)
    return AppliedMigrationsError(
        "These migrations are recorded as applied in the database:\n"
        f"{names}\n"
        "Renaming them would leave the migration history inconsistent (they would depend on "
        "main's migrations, which are not applied) and 'migrate' would refuse to run. Nothing "
        "was changed.\nRun again with --update-applied to roll them back first (their reverse "
        "operations), then rename them; 'python manage.py migrate' then applies them in the new "
        "order."
    )
