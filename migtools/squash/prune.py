"""The prune_squashed plan: every edit that turns deployed squashes into normal migrations,
computed in memory before anything is written (Django's three manual steps, plus what migtools
keeps true).

For each squash: its replaced files are deleted; every ``dependencies``/``run_before`` entry
naming a replaced migration, in any managed app, is rewritten to the squash (only the string
literals change, see :mod:`migtools.renamer.rewrite`); the squash's ``replaces`` statement is
removed; migration tests move where an exact equivalent exists (the last replaced migration's
state is the squash's) and are reported otherwise; the lockfile is rewritten if its leaf
changes. The resulting graph is checked (one leaf per app, no missing node) before anything
is written; :mod:`migtools.renamer.apply` writes it, journaled.

Whether a squash may be pruned depends on the databases: :func:`database_state` reads
``django_migrations`` and says which squashes are deployed, which are not deployed at all
(a fresh database) and which are half-applied (a refusal).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from migtools.errors import GraphError, MigtoolsError, SquashError
from migtools.graph import baseline, lockfile
from migtools.graph.disk import AppMigrations, DiskGraph, MigrationFile, parse_migration_source
from migtools.renamer import plan as planning
from migtools.renamer import rewrite
from migtools.renamer.inputs import Inputs
from migtools.squash import references

Key = tuple[str, str]
fmt = planning.fmt


@dataclass
class Squash:
    key: Key
    path: Path
    replaced: list[Key]  # its replaces, in order
    covered: list[Key]  # what it stands for: replaced, and what replaced squashes replace
    present: list[Key]  # the covered migrations still on disk
    inner: dict[Key, list[Key]] = field(default_factory=dict)  # replaced squash -> its replaces

    @property
    def last(self) -> Key:
        """The migration whose state is the squash's (the last one that is not a squash)."""
        return next(k for k in reversed(self.covered) if k not in self.inner)


@dataclass
class Pruning:
    squashes: list[Squash]
    plan: planning.Plan
    moved_tests: list[str] = field(default_factory=list)  # "path:line: Owner.attr a -> b"
    for_a_human: list[str] = field(default_factory=list)  # tests with no equivalent


def find_squashes(inputs: Inputs, labels: Iterable[str] | None) -> list[Squash]:
    """The outermost squashes of the given apps (a squash another squash replaces, Django
    6.0+, is pruned with it)."""
    wanted = set(labels) if labels is not None else set(inputs.apps)
    files = {f.key: f for app in inputs.apps.values() for f in app.files.values()}
    replaces = {key: list(f.replaces) for key, f in files.items() if f.replaces}
    inner = {r for keys in replaces.values() for r in keys if r in replaces}

    def cover(keys: list[Key], nested: dict[Key, list[Key]]) -> list[Key]:
        out: list[Key] = []
        for key in keys:
            if key in replaces:
                nested[key] = replaces[key]
                out += cover(replaces[key], nested)
            out.append(key)
        return out

    found = []
    for key in sorted(replaces):
        if key[0] not in wanted or key in inner:
            continue
        nested: dict[Key, list[Key]] = {}
        covered = cover(replaces[key], nested)
        present = [k for k in covered if k in files]
        found.append(Squash(key, files[key].path, replaces[key], covered, present, nested))
    return found


# --------------------------------------------------------------------------- databases


@dataclass
class DatabaseState:
    alias: str
    deployed: list[Key] = field(default_factory=list)  # every replaced migration applied
    fresh: list[Key] = field(default_factory=list)  # none applied
    record: list[Key] = field(default_factory=list)  # deployed, but the squash's row is missing
    half: dict[Key, tuple[list[Key], list[Key]]] = field(default_factory=dict)  # applied, not


def database_state(alias: str, recorded: set[Key], squashes: list[Squash]) -> DatabaseState:
    state = DatabaseState(alias)
    for squash in squashes:

        def applied(key: Key, squash: Squash = squash) -> bool:
            """Recorded, or a squash whose replaced migrations all are (as Django 6.0 reads
            a squash of a squash)."""
            if key in recorded:
                return True
            inner = squash.inner.get(key)
            return bool(inner) and all(applied(k) for k in inner or [])

        done = [r for r in squash.replaced if applied(r)]
        if len(done) == len(squash.replaced):
            state.deployed.append(squash.key)
            if squash.key not in recorded:
                state.record.append(squash.key)
        elif squash.key not in recorded and not any(k in recorded for k in squash.covered):
            state.fresh.append(squash.key)
        else:
            missing = [r for r in squash.replaced if r not in done]
            state.half[squash.key] = (done, missing)
    return state


def refuse_half_applied(states: list[DatabaseState]) -> None:
    lines = []
    for state in states:
        for key, (applied, missing) in state.half.items():
            lines.append(
                f"  database '{state.alias}': {fmt(key)} is half applied: "
                f"{', '.join(k[1] for k in applied) or 'none'} applied, "
                f"{', '.join(k[1] for k in missing)} not"
            )
    if lines:
        raise SquashError(
            "Refusing to prune: a database has only part of a squash applied, and without the "
            "replaced migrations it could never apply the rest:\n" + "\n".join(lines) + "\n"
            "Deploy first (python manage.py migrate on that database), then prune. Nothing was "
            "changed."
        )


# --------------------------------------------------------------------------- editing


def without_replaces(source: str, path: Path) -> str:
    """``source`` without the ``replaces = [...]`` statement of its Migration class (and one
    blank line it leaves doubled)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt in node.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else []
            if isinstance(stmt, ast.AnnAssign):
                targets = [stmt.target]
            if not any(isinstance(t, ast.Name) and t.id == "replaces" for t in targets):
                continue
            lines = source.splitlines(keepends=True)
            first, last = stmt.lineno, stmt.end_lineno or stmt.lineno
            head = lines[first - 1][: stmt.col_offset]
            tail = lines[last - 1].encode("utf-8")[stmt.end_col_offset or 0 :].decode("utf-8")
            if head.strip() or tail.split("#", 1)[0].strip():
                raise SquashError(
                    f"{path}:{first}: the replaces statement shares its line with other code; "
                    "put it on its own lines, then run prune_squashed again. Nothing was changed."
                )
            del lines[first - 1 : last]
            index = first - 1
            if 0 < index < len(lines) and not lines[index].strip() and not lines[index - 1].strip():
                del lines[index]
            return "".join(lines)
    return source


def plan(inputs: Inputs, squashes: list[Squash]) -> Pruning:
    """Every change, computed in memory; raises :class:`SquashError` when impossible."""
    renames: dict[Key, Key] = {}
    deleted: set[Key] = set()
    squash_keys = {s.key for s in squashes}
    for squash in squashes:
        for key in squash.covered:
            renames[key] = squash.key
        deleted.update(squash.present)
    files: dict[Key, MigrationFile] = {
        f.key: f for app in inputs.apps.values() for f in app.files.values()
    }
    changes: list[planning.Change] = []
    new_files: dict[Key, MigrationFile] = {}
    for key, mig in files.items():
        if key in deleted:
            text = mig.path.read_text(encoding="utf-8")
            changes.append(planning.Change(mig.path, mig.path, text, None))
            continue
        names_replaced = any(ref in renames for ref in (*mig.dependencies, *mig.run_before))
        if key not in squash_keys and not names_replaced:
            new_files[key] = mig
            continue
        text = mig.path.read_text(encoding="utf-8")
        new = text
        if names_replaced:
            try:
                parse_migration_source(text, mig.path, key[0], key[1])
            except GraphError as exc:
                raise SquashError(
                    f"{exc} ({fmt(key)} names a migration a squash replaces; make that line "
                    "a literal ('app_label', 'migration_name') pair, then run prune_squashed "
                    "again). Nothing was changed."
                ) from None
            edits = [
                e
                for e in rewrite.migration_edits(new, renames)
                if key not in squash_keys or not _in_replaces(new, e)
            ]
            new = rewrite.apply(new, edits)
        if key in squash_keys:
            new = without_replaces(new, mig.path)
        new_files[key] = parse_migration_source(new, mig.path, key[0], key[1])
        if new != text:
            changes.append(planning.Change(mig.path, mig.path, text, new))

    apps = [
        AppMigrations(
            label,
            app.module,
            app.directory,
            {k[1]: f for k, f in new_files.items() if k[0] == label},
            list(app.warnings),
        )
        for label, app in inputs.apps.items()
    ]
    try:
        new_graph = DiskGraph(apps)
        expected = planning.lockfile_entries(new_graph)
    except GraphError as exc:
        raise SquashError(f"Pruning would break the graph, nothing was changed: {exc}") from None
    except MigtoolsError as exc:
        raise SquashError(
            f"After pruning the graph would conflict, nothing was changed: {exc}"
        ) from None

    moved_tests: list[str] = []
    for_a_human: list[str] = []
    changes += _test_changes(inputs, squashes, moved_tests, for_a_human)
    new_lock = lockfile.render(expected)
    if new_lock != inputs.lockfile_text:
        changes.append(
            planning.Change(
                inputs.lockfile_path, inputs.lockfile_path, inputs.lockfile_text, new_lock
            )
        )
    changes += _baseline_change(inputs.lockfile_path, squashes)
    plan = planning.Plan(
        apps=[],
        renames=[],
        changes=changes,
        lockfile_path=inputs.lockfile_path,
        new_graph=new_graph,
        moved=[],
        root=inputs.root,
    )
    return Pruning(squashes, plan, moved_tests, for_a_human)


def _baseline_change(lockfile_path: Path, squashes: list[Squash]) -> list[planning.Change]:
    """An adoption baseline entry naming a migration the prune deletes names its squash
    afterwards (the squash stands for that history); the rest of the file is kept as it is."""
    path = baseline.path_for(lockfile_path)
    entries = baseline.read(path)
    owner = {r: s.key[1] for s in squashes for r in s.covered}
    moved = {
        label: owner[(label, name)] for label, name in entries.items() if (label, name) in owner
    }
    if not moved:
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        label, sep, _rest = line.partition(":")
        if sep and label.strip() in moved and not line.lstrip().startswith("#"):
            newline = line[len(line.rstrip("\r\n")) :]
            lines[i] = f"{label}: {moved[label.strip()]}{newline}"
    return [planning.Change(path, path, text, "".join(lines))]


def _in_replaces(source: str, edit: rewrite.Edit) -> bool:
    """Whether ``edit`` falls inside a ``replaces`` statement (removed as a whole)."""
    data = source.encode("utf-8")
    line_starts = [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "replaces" for t in node.targets
        ):
            start = line_starts[node.lineno - 1] + node.col_offset
            end = line_starts[(node.end_lineno or node.lineno) - 1] + (node.end_col_offset or 0)
            if start <= edit.start < end:
                return True
    return False


def _test_changes(
    inputs: Inputs, squashes: list[Squash], moved: list[str], for_a_human: list[str]
) -> list[planning.Change]:
    """Tests naming a replaced migration: the last replaced one becomes the squash (the same
    state); any other is reported for a human (its state exists nowhere after pruning)."""
    from migtools import conf

    exact: dict[Key, Key] = {s.last: s.key for s in squashes}
    replaced = {r for s in squashes for r in s.covered}
    owner = {r: s.key for s in squashes for r in s.covered}
    named = references.find(inputs.test_files, replaced, conf.default_app())
    changes = []
    for path in sorted({ref.path for ref in named}):
        text = path.read_text(encoding="utf-8")
        rel = _relative(inputs.root, path)
        here = [r for r in named if r.path == path]
        # A test with one name that has no equivalent is left whole, for a human.
        stuck = {r.owner for r in here if r.key not in exact}
        spans = _class_lines(text, stuck)
        edits = [
            e
            for e in rewrite.test_edits(text, exact, {})
            if not any(a <= _line_of(text, e.start) <= b for a, b in spans)
        ]
        new = rewrite.apply(text, edits)
        for ref in here:
            if ref.owner in stuck:
                if ref.key not in exact:
                    for_a_human.append(
                        f"{rel}:{ref.line}: {ref.owner}.{ref.attr} = {ref.key[1]!r}: that state "
                        f"exists only inside {fmt(owner[ref.key])}; rewrite the test against "
                        "the squash or a later migration, or delete it"
                    )
                continue
            moved.append(
                f"{rel}:{ref.line}: {ref.owner}.{ref.attr} {ref.key[1]} -> {exact[ref.key][1]}"
            )
        if new != text:
            changes.append(planning.Change(path, path, text, new))
    return changes


def _class_lines(source: str, names: set[str]) -> list[tuple[int, int]]:
    if not names:
        return []
    return [
        (node.lineno, node.end_lineno or node.lineno)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ClassDef) and node.name in names
    ]


def _line_of(source: str, offset: int) -> int:
    return source.encode("utf-8")[:offset].count(b"\n") + 1


def _relative(root: Path | None, path: Path) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


def describe(pruning: Pruning, states: Mapping[str, DatabaseState]) -> list[str]:
    out = []
    for squash in pruning.squashes:
        gone = ", ".join(k[1] for k in squash.present) or "none left on disk"
        out.append(f"Pruning {fmt(squash.key)}: deleting {gone}; removing its replaces.")
    for state in states.values():
        for key in state.record:
            out.append(
                f"  database '{state.alias}': recording {fmt(key)} as applied (its replaced "
                "migrations all are)"
            )
    return out


def verify(plan: planning.Plan) -> list[str]:
    """Problems left after writing (see :func:`migtools.renamer.plan.verify`)."""
    return planning.verify(plan)
