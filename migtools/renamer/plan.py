"""The renamer's plan: every edit, computed in memory before anything is written, and its diff.

A :class:`Plan` says which migrations move (the branch's whole chain in
each app, in order, after the leaf of main's side), their new names (same number width, growing
when needed: ``0099`` -> ``0100``, ``9999`` -> ``10000``), the new source of every file that names a
moved migration (any app, migration tests included), test files named after a moved migration,
and the lockfile. The graph the plan leaves behind is built and checked (one leaf per app, no
cycle) before anything is written; :mod:`migtools.renamer.apply` writes it.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from migtools import source as pysource
from migtools.errors import (
    ConflictError,
    DynamicMigrationError,
    GraphError,
    MigtoolsError,
    RenumberError,
    UsageError,
)
from migtools.graph import lockfile
from migtools.graph.disk import (
    AppMigrations,
    DiskGraph,
    MigrationFile,
    parse_migration_source,
)
from migtools.renamer import renamemap, rewrite
from migtools.renamer.inputs import Inputs

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
    # the same edits applied to another version of the file (the index's, under --allow-dirty);
    # None: the file's new content is ``new_text`` whatever the version
    redo: Callable[[str], str] | None = field(default=None, compare=False)

    @property
    def moved(self) -> bool:
        return self.source != self.path

    def new_version_of(self, text: str) -> str | None:
        """What this change makes of ``text`` (another version of the source)."""
        if self.new_text is None:
            return None
        return self.redo(text) if self.redo is not None else self.new_text


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


def number_of(name: str) -> tuple[int, int] | None:
    """(number, width) of a migration name's numeric prefix."""
    match = _NUMBER.match(name)
    if match is None:
        return None
    return int(match.group(1)), len(match.group(1))


# --------------------------------------------------------------------------- selecting


def select(inputs: Inputs, migration: str, app_label: str | None) -> Key:
    """The migration named by ``migration`` (full name, number or unique substring)."""
    if app_label is not None:
        label = inputs.label_of(app_label)
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
        hint = (
            "give the full name" if app_label is not None else "give the full name or the app label"
        )
        raise RenumberError(f"'{migration}' matches several migrations{where}; {hint}:\n{listing}")
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
        self.edits: dict[Path, list[tuple[Mapping[Key, Key], Mapping[Key, Key] | None]]] = {}
        # the rename map's tables that apply to this tree (set by _apply_rename_map)
        self.map_table: dict[Key, Key] = {}
        self.map_parents: dict[Key, tuple[Key, Key]] = {}

    def source(self, path: Path) -> str:
        if path not in self.text:
            self.original[path] = self.text[path] = pysource.read(path)
        return self.text[path]

    def edit(self, key: Key, renames: Mapping[Key, Key], relinks: Mapping[Key, Key] | None) -> bool:
        mig = self.files[key]
        source = self.source(mig.path)
        wanted = [ref for ref in _refs(mig) if ref in renames or (relinks and ref in relinks)]
        try:
            parse_migration_source(source, mig.path, key[0], key[1])
        except DynamicMigrationError as exc:
            if not wanted:
                return False
            names = ", ".join(fmt(ref) for ref in wanted)
            raise RenumberError(
                f"{self.relative(mig.path)}:{exc.line}: {fmt(key)} names {names}, but this "
                f"line is computed ({exc.reason}), so update_migration cannot rewrite it. Make "
                "it a literal ('app_label', 'migration_name') pair, then run update_migration "
                "again. Nothing was changed."
            ) from None
        edits = rewrite.migration_edits(source, renames, relinks)
        if not edits:
            return False
        new = rewrite.apply(source, edits)
        self.text[mig.path] = new
        self.edits.setdefault(mig.path, []).append((renames, relinks))
        self.files[key] = parse_migration_source(new, mig.path, key[0], key[1])
        return True

    def relative(self, path: Path) -> str:
        root = self.inputs.root
        if root is not None:
            try:
                return path.resolve().relative_to(root).as_posix()
            except ValueError:
                pass
        return str(path)

    def redo(self, path: Path) -> Callable[[str], str]:
        """The edits made to ``path``, as a function of another version of its text."""
        steps = list(self.edits.get(path, []))

        def again(text: str) -> str:
            for renames, relinks in steps:
                try:
                    text = rewrite.apply(text, rewrite.migration_edits(text, renames, relinks))
                except SyntaxError:
                    break
            return text

        return again

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
        return DiskGraph(apps, registry=self.inputs.registry)


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
            inputs.label_of(app_label)
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
    # named as they are after the run
    fixed = [
        f"{fmt(table.get(key, key))}: {', '.join(refs)} (renamed earlier in this rebase)"
        for key, refs in map_fixes
    ]
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
            changes.append(Change(path, dest, old_text, new_text, redo=work.redo(path)))
    done = {c.source for c in changes}
    for rename in renames.values():
        if rename.old_path not in done:
            text = pysource.read(rename.old_path)
            changes.append(Change(rename.old_path, rename.new_path, text, text, redo=_same))
    changes.extend(_test_changes(inputs, table, new_parents, work))

    new_lock = lockfile.render(expected)
    if new_lock != inputs.lockfile_text and (
        labels or inputs.lockfile_sides is not None or changes
    ):
        changes.append(
            Change(inputs.lockfile_path, inputs.lockfile_path, inputs.lockfile_text, new_lock)
        )
    if changes or inputs.lockfile_unmerged:
        changes.extend(_rename_map_change(inputs, table, new_parents))
    return Plan(
        apps=[p for p in app_plans if p.changed],
        renames=list(renames.values()),
        changes=changes,
        lockfile_path=inputs.lockfile_path,
        new_graph=new_graph,
        moved=moved,
        map_fixes=fixed,
        stage_lockfile=inputs.lockfile_unmerged,
        root=root,
    )


def _apply_rename_map(inputs: Inputs, work: _Workspace) -> list[tuple[Key, list[str]]]:
    """Rewrite references to migrations renamed at an earlier stop of this rebase (the tables
    that apply are kept on ``work`` for the migration tests)."""
    table: dict[Key, Key] = {}
    for label, names in inputs.rename_map.items():
        for old, new in names.items():
            if (label, old) not in work.files and (label, new) in work.files:
                table[(label, old)] = (label, new)
    work.map_table = table
    work.map_parents = {
        first: (old, new)
        for first, (old, new) in inputs.rename_parents.items()
        if first not in work.files and new in work.files
    }
    fixes = []
    for key, mig in list(work.files.items()):
        if any(ref in table for ref in _refs(mig)) and work.edit(key, table, None):
            fixes.append((key, sorted({fmt(r) for r in _refs(mig) if r in table})))
    return fixes


def _test_changes(
    inputs: Inputs,
    table: Mapping[Key, Key],
    new_parents: Mapping[Key, tuple[Key, Key]],
    work: _Workspace,
) -> list[Change]:
    """Migration tests naming a moved migration: the rebase's rename map first (a test added
    by a commit replayed after an earlier stop), then this run's renames and new parents."""
    steps = [(work.map_table, work.map_parents), (table, new_parents)]
    steps = [(t, p) for t, p in steps if t or p]
    if not steps:
        return []
    names = {k[1] for t, p in steps for k in [*t, *(old for old, _new in p.values())]}
    names |= {k[1] for _t, p in steps for k in p}
    renamed_names = {k[1]: v[1] for k, v in table.items()}
    redo = _test_redo(steps)
    changes = []
    for path in inputs.test_files:
        try:
            text = pysource.read(path)
        except (OSError, SyntaxError):
            continue
        new_text = redo(text) if any(name in text for name in names) else text
        target = path
        for old, new in renamed_names.items():
            if old in path.stem:
                target = path.with_name(path.name.replace(old, new))
                break
        if new_text != text or target != path:
            changes.append(Change(path, target, text, new_text, redo=redo))
    return changes


def _same(text: str) -> str:
    return text


def _test_redo(
    steps: list[tuple[Mapping[Key, Key], Mapping[Key, tuple[Key, Key]]]],
) -> Callable[[str], str]:
    def again(text: str) -> str:
        try:
            for table, new_parents in steps:
                text = rewrite.apply(text, rewrite.test_edits(text, table, new_parents))
        except SyntaxError:
            pass
        return text

    return again


def _rename_map_change(
    inputs: Inputs, table: Mapping[Key, Key], new_parents: Mapping[Key, tuple[Key, Key]]
) -> list[Change]:
    """Record this stop's renames for the later stops of the rebase in progress."""
    path = inputs.rename_map_path
    if path is None or not inputs.in_rebase or not (table or new_parents):
        return []
    parents = renamemap.merged_parents(
        inputs.rename_parents,
        table,
        {first: (old, table.get(new, new)) for first, (old, new) in new_parents.items()},
    )
    new_text = renamemap.text(
        inputs.rebase_key, renamemap.merged(inputs.rename_map, table), parents
    )
    if new_text is None:
        return []
    try:
        old_text: str | None = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        old_text = None
    if new_text == old_text:
        return []
    return [Change(path, path, old_text, new_text, stage=False)]


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
                source = pysource.read(planned.path)
                actual = parse_migration_source(source, planned.path, label, name)
            except (OSError, SyntaxError, GraphError) as exc:
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
