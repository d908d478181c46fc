"""The verifier: findings for a set of migrations in one pass over the migration plan.

The project state is built once: migrations before the first selected one only mutate the
state (nothing rendered), each selected migration is judged by the rule engine
(``migtools.rules.engine``: collected with a collecting schema editor operation by operation,
as ``Migration.apply(..., collect_sql=True)`` does, so the SQL is the SQL ``sqlmigrate``
prints, then judged). The cost grows with the plan, not with the plan times the selection:
the registry is rendered once, at the first selected migration, and kept in step in place
(``migtools.verifier.fast``) rather than re-rendered per operation.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState

from migtools import conf as mt_settings
from migtools import project
from migtools.errors import ConflictError
from migtools.rules import edits, routing
from migtools.rules.catalogue import Finding, Level, configured_levels, effective_level, hint
from migtools.rules.engine import Engine, large_tables
from migtools.rules.operation import created_tables
from migtools.verifier import offline, statecache
from migtools.verifier.fast import one_client_cursor, step
from migtools.verifier.report import MigrationReport, Report
from migtools.verifier.select import (
    default_apps,
    full_plan,
    load,
    path_of,
    realize,
    selection,
)

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration

    from migtools.gitrepo import GitRepo

Node = tuple[str, str]
Progress = Callable[[int, int], None]
EDITED = "migration-edited-after-merge"


# -- the pass ----------------------------------------------------------------------------


class Verifier:
    """One pass over the plan for the selected nodes (see ``run`` for what counts as new)."""

    def __init__(
        self,
        connection: BaseDatabaseWrapper,
        loader: MigrationLoader | None = None,
        *,
        large_tables: Collection[str] | None = None,
        with_tests: bool = True,
    ) -> None:
        self.connection = connection
        self.loader = loader or load(connection)
        self.levels = configured_levels()
        if large_tables is None:
            large_tables = (
                offline.large_tables(connection.alias)
                if offline.is_offline(connection)
                else _database_large_tables(connection)
            )
        self.large_tables = large_tables
        self.managed = set(default_apps())
        self.with_tests = with_tests
        self._tests: project.MigrationTests | None = None
        self.engine = Engine(
            connection,
            large_tables=self.large_tables,
            levels=self.levels,
            managed=self.managed,
            tests=self._read_tests if with_tests else None,
            step=step,
        )

    @property
    def tests(self) -> project.MigrationTests:
        if self._tests is None:
            files = project.find_test_files(mt_settings.migration_test_dirs(), project.root())
            self._tests = project.read_migration_tests(files, mt_settings.default_app())
        return self._tests

    def _read_tests(self) -> project.MigrationTests:
        return self.tests

    def run(
        self,
        selected: Collection[Node],
        progress: Progress | None = None,
        *,
        one_deploy: bool = False,
        deployed: Collection[Node] | None = None,
        deploy: Collection[Node] | None = None,
        judged: Collection[Node] | None = None,
    ) -> Report:
        """Verify ``selected`` in plan order, in one linear pass: the state of the migrations
        before the first selected one is built without rendering a model; from there on the
        rendered registry is kept in step operation by operation (see
        ``migtools.verifier.fast.step``).

        What counts as a new table (operations on it lock nothing in use): with
        ``one_deploy`` (``--since``, ``--unapplied``, ``migrate``'s preflight: the selection
        is one deploy) a table created by any selected migration is new in every later one;
        without it (a full run) each migration is judged as production meets it, with every
        earlier migration deployed: a table is new only in the migration that creates it.
        ``deployed``: the unselected migrations the state is built from (default: every
        earlier node of the plan; the preflight passes the applied ones). ``judged``: of the
        selected nodes, only these are judged (the preflight: the checked ones); the others
        only advance the state (no SQL collected) and, with ``one_deploy``, the tables they
        create count as new. ``deploy``: only these selected nodes deploy together
        (``--files``: those not committed yet); the others are judged as in a full run."""
        wanted = set(selected)
        to_judge = wanted if judged is None else wanted & set(judged)
        if not to_judge:
            return Report()
        plan = full_plan(self.loader)
        if deployed is not None:
            keep = wanted | set(deployed)
            plan = [n for n in plan if n in keep]
        positions = [i for i, n in enumerate(plan) if n in to_judge]
        start = next(i for i, n in enumerate(plan) if n in wanted)
        state, cached = self._state_before(plan, start)
        realize(self.loader, plan[start if state is not None else 0 : positions[-1] + 1])
        skipped = start if state is not None else 0
        if state is None:
            state = ProjectState(real_apps=self.loader.unmigrated_apps)
            start = 0
        nodes = self.loader.graph.nodes
        deploy_tables: set[str] = set()
        out: list[MigrationReport] = []
        with one_client_cursor(self.connection):
            for index in range(start, positions[-1] + 1):
                node = plan[index]
                migration = nodes[node]
                if cached is not None and index == cached.at:
                    cached.store(state)
                if node in to_judge:
                    together = node in deploy if deploy is not None else one_deploy
                    new_tables = deploy_tables if together else set()
                    out.append(self.verify_migration(migration, state, new_tables))
                    if progress is not None:
                        progress(len(out), len(positions))
                    continue
                if one_deploy and node in wanted:
                    deploy_tables |= created_tables(migration)
                for operation in migration.operations:
                    step(state, operation, migration.app_label)
        return Report(out, new_tables=frozenset(deploy_tables), cached=skipped)

    def _state_before(
        self, plan: list[Node], start: int
    ) -> tuple[ProjectState | None, _Pending | None]:
        """The cached state before ``plan[start]`` (``migtools.verifier.statecache``), or
        None and what to store once the pass reaches that point (None: no cache)."""
        if start == 0 or not statecache.enabled():
            return None, None
        first = self.loader.graph.nodes[plan[start]]
        where = path_of(first)
        if where is None:
            return None, None
        nodes = self.loader.graph.nodes
        content_key = statecache.key(
            ((n, path_of(nodes[n])) for n in plan[:start]), self.loader.unmigrated_apps
        )
        if content_key is None:
            return None, None
        directory = Path(where).parent
        models = statecache.get(directory, content_key)
        if models is None:
            return None, _Pending(start, directory, content_key)
        return ProjectState(models=models, real_apps=self.loader.unmigrated_apps), None

    def verify_migration(
        self, migration: Migration, state: ProjectState, new_tables: set[str]
    ) -> MigrationReport:
        """Judge one migration with the rule engine; ``state`` (the state before it) is
        advanced in place and ``new_tables`` grows with the tables it creates."""
        path = path_of(migration)
        judged = self.engine.judge(migration, state, new_tables, path=path)
        return MigrationReport(
            (migration.app_label, migration.name),
            path,
            entries=judged.entries,
            findings=judged.findings,
            atomic=bool(migration.atomic),
            op_starts=judged.op_starts,
        )


class _Pending:
    """A state to store when the pass reaches ``at``."""

    def __init__(self, at: int, directory: Path, content_key: str) -> None:
        self.at, self.directory, self.content_key = at, directory, content_key

    def store(self, state: ProjectState) -> None:
        statecache.put(self.directory, self.content_key, state.models)


_database_large_tables = large_tables


def verify(
    connection: BaseDatabaseWrapper,
    *,
    app_label: str | None = None,
    name: str | None = None,
    since: str | None = None,
    until: str | None = None,
    files: Collection[str] | None = None,
    unapplied: bool = False,
    progress: Progress | None = None,
) -> Report:
    """The findings of a selection (``migtools.verifier.select``); with ``since``, a merged
    migration whose file changed since is a ``migration-edited-after-merge`` finding."""
    keep = None
    if files is not None or until is not None:
        keep = set(files or ())
    loader = load(connection, keep=keep, lazy=statecache.enabled())
    chosen = selection(
        loader,
        app_label=app_label,
        name=name,
        since=since,
        until=until,
        files=files,
        unapplied=unapplied,
    )
    verifier = Verifier(connection, loader)
    try:
        report = verifier.run(
            chosen.nodes, progress, one_deploy=chosen.one_deploy, deploy=chosen.deploy
        )
    except (LookupError, ValueError, TypeError):
        # Sibling leaves replayed one after the other (one deletes a model the other
        # edits) cannot be merged into one state: the conflict is the finding.
        conflicts = loader.detect_conflicts()
        if conflicts:
            raise ConflictError(conflicts) from None
        raise
    # Only the migrations the router lets run on this database (migtools.rules.routing).
    nodes = loader.graph.nodes
    report.migrations = [
        m for m in report.migrations if routing.runs_on(nodes[m.node], connection.alias)
    ]
    if chosen.base is not None and since is not None:
        _edited_after_merge(report, loader, chosen.base, since, until, verifier.levels, chosen.repo)
    return report


def merge(reports: Iterable[Report]) -> Report:
    """One report of the same selection verified on several databases: each migration once
    (the SQL of the first database it runs on), with the findings of every database, each
    fact once: a finding about an operation that several databases give alike is one finding
    listing them (``Finding.databases``; ``database`` is the first); a finding about the
    whole migration that every database repeats is kept once, with the first alias."""
    by_node: dict[Node, MigrationReport] = {}
    seen: dict[tuple[object, ...], int] = {}  # -> index in its migration's findings
    for report in reports:
        for m in report.migrations:
            merged = by_node.setdefault(
                m.node,
                MigrationReport(m.node, m.path, m.entries, [], m.atomic, m.op_starts),
            )
            for f in m.findings:
                key: tuple[object, ...] = (
                    m.node,
                    f.rule_id,
                    f.level,
                    f.operation_index,
                    f.message,
                    f.sql,
                )
                at = seen.get(key)
                if at is None:
                    seen[key] = len(merged.findings)
                    merged.findings.append(f)
                    continue
                first = merged.findings[at]
                if f.operation_index is None or f.database in first.aliases:
                    continue
                if f.database is not None:
                    aliases = (*first.aliases, f.database)
                    merged.findings[at] = dataclasses.replace(first, databases=aliases)
    return Report(list(by_node.values()))


def _edited_after_merge(
    report: Report,
    loader: MigrationLoader,
    base: str,
    since: str,
    until: str | None,
    levels: dict[str, Level],
    repo: GitRepo | None = None,
) -> None:
    """Add a finding to each selected migration that ``base`` already holds and whose
    meaning (``migtools.rules.edits``) changed since."""
    if repo is None:
        from migtools.gitrepo import GitRepo

        repo = GitRepo.find(project.root())
    for item in report.migrations:
        if item.path is None or not Path(item.path).is_relative_to(repo.root):
            continue
        before = repo.show(base, Path(item.path))
        if before is None:
            continue  # added since: not merged
        after = repo.show(until, Path(item.path)) if until is not None else None
        if after is None:
            after = Path(item.path).read_text(encoding="utf-8", errors="replace")
        if not edits.edited(before, after):
            continue
        migration = loader.graph.nodes[item.node]
        level = effective_level(EDITED, migration, levels=levels)
        if level is Level.OFF:
            continue
        item.findings.insert(
            0,
            Finding(
                EDITED,
                level,
                f"Edited after it was merged: what it does differs from its version at "
                f"{since} ({base[:10]}); Django never re-runs an applied migration.",
                app_label=item.node[0],
                migration_name=item.node[1],
                path=item.path,
                line=_class_line(migration),
            ),
        )


def _class_line(migration: Migration) -> int:
    """The line of the migration's class in its file (1 when Python cannot tell)."""
    try:
        return inspect.getsourcelines(type(migration))[1]
    except (OSError, TypeError):
        return 1


def findings_for_files(paths: Iterable[str | Path], connection: BaseDatabaseWrapper) -> Report:
    """Verify the migrations defined in ``paths`` (e.g. the files makemigrations just wrote)."""
    wanted = {str(Path(p).resolve()) for p in paths}
    loader = load(connection)
    selected = {n for n, m in loader.graph.nodes.items() if path_of(m) in wanted}
    # The files just written are unapplied and deploy together.
    return Verifier(connection, loader).run(selected, one_deploy=True)


def lines_for_written(paths: Iterable[str | Path], database: str = "default") -> list[str]:
    """One line per finding in the migration files just written (for makemigrations to
    print); when the database cannot be reached, verified offline, with one line saying so
    first (``migtools.verifier.offline``)."""
    from django.db.utils import OperationalError

    try:
        with offline.reachable_or_offline(database) as (connection, offline_run):
            report = findings_for_files(paths, connection)
    except OperationalError as exc:
        return [f"migtools: migrations not verified ({offline.first_line(exc)})"]
    lines = [offline_run.line()] if offline_run is not None else []
    for f in report.findings:
        lines += [
            f"migtools: {f.path}:{f.line}: {f.level}: [{f.rule_id}] {f.message}",
            f"    fix: {f.rule.first_step}",
            f"    {hint(f.rule_id)}",
        ]
    return lines
