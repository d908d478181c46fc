"""``migrate``'s preflight: the whole plan judged by the rule engine before anything runs.

The plan ``migrate`` is about to run is one deploy: a table created anywhere in it is new.
Forwards migrations are judged in one pass of the verifier over the plan (the state built
from the migrations already applied, table sizes from the database); migrations the plan
unapplies are judged backwards. Only what the router lets run on the connection's alias is
judged (``migtools.rules.routing``), with that database's table sizes. Only checked migrations are judged (unchecked and baselined
ones only advance the state: no SQL is collected for them), and only error-level findings
about the database refuse the plan (rules about the repository are the verifier's). The state
of the applied history is read from the verifier's content-keyed cache
(``migtools.verifier.statecache``) when it holds it, so one new migration on a long history
does not replay the history a second time (Django's ``migrate`` replays it once already).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from migtools.errors import IrreversibleMigrationError, UnsafeMigrationError
from migtools.rules.catalogue import About, Finding, Level
from migtools.rules.engine import Engine, explain, large_tables
from migtools.rules.scope import is_checked
from migtools.verifier.run import Verifier

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.migration import Migration

Plan = list[tuple["Migration", bool]]


@dataclass
class Preflight:
    """What the preflight found on a plan."""

    findings: list[Finding] = field(default_factory=list)  # about the database, not OFF
    new_tables: frozenset[str] = frozenset()  # tables the plan creates
    database: str = ""  # the alias the plan is applied to

    @property
    def refusals(self) -> list[Finding]:
        return [f for f in self.findings if f.refuses]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level is Level.WARNING]

    def raise_if_refused(self) -> None:
        """``UnsafeMigrationError`` listing every refusing finding (file:line, why, recipe);
        one line naming the adoption command when the refusals are mostly history written
        before migtools came in (``adoption_line``)."""
        refusals = self.refusals
        line = adoption_line(refusals)
        if line is not None:
            raise UnsafeMigrationError(_MISSING, "migrate", line)
        if refusals:
            names = sorted({f"{f.app_label}.{f.migration_name}" for f in refusals})
            on = f" on database {self.database!r}" if self.database else ""
            raise UnsafeMigrationError.of(
                f"migrate refused before applying anything{on} ({len(refusals)} finding(s) "
                f"in {', '.join(names)}; nothing was applied)",
                explain(refusals),
                tuple(dict.fromkeys(f.rule_id for f in refusals)),
            )


_MISSING = "missing-is-post-deployment"


def adoption_line(refusals: list[Finding]) -> str | None:
    """One line for a plan refused mostly for ``missing-is-post-deployment`` in apps with no
    adoption baseline: plain migrations written before migtools came into the project (a
    refusal listing each of them helps nobody). None otherwise."""
    from migtools.graph import baseline

    missing = [f for f in refusals if f.rule_id == _MISSING]
    if len(missing) < 2 or 2 * len(missing) < len(refusals):
        return None
    adopted = baseline.effective()
    if any(f.app_label in adopted for f in missing):
        return None
    migrations = {(f.app_label, f.migration_name) for f in refusals}
    counts: dict[str, int] = {}
    for f in refusals:
        counts[f.rule_id] = counts.get(f.rule_id, 0) + 1
    rules = ", ".join(f"{n:,} {rule}" for rule, n in sorted(counts.items(), key=lambda x: -x[1]))
    apps = ", ".join(sorted({f.app_label for f in missing}))
    return (
        f"refused before applying anything: {len(refusals):,} finding(s) on "
        f"{len(migrations):,} migration(s) ({rules}), most on history written before "
        f"migtools came into the project (apps without an adoption baseline: {apps}); nothing "
        "was applied. Adopt once: `python manage.py migrations_lockfile --adopt`, commit "
        "migrations_baseline.txt, run migrate again (`migrate --plan` lists every finding)."
    )


def refuse_irreversible(plan: Iterable[tuple[Migration, bool]]) -> None:
    """One line, before anything is unapplied, for the first migration of the plan that
    Django would fail to unapply midway (``IrreversibleError``): which one, why, and what
    to do (``IrreversibleMigrationError``)."""
    for migration, backwards in plan:
        if not backwards:
            continue
        label = f"{migration.app_label}.{migration.name}"
        for index, operation in enumerate(migration.operations):
            if operation.reversible:
                continue
            explain = getattr(operation, "migtools_irreversible", None)
            why = (
                explain(migration.app_label)
                if explain is not None
                else f"operation {index + 1} ({operation.describe()}) is not reversible. "
                "Give it a reverse (e.g. RunPython(..., reverse_code=...))"
            )
            raise IrreversibleMigrationError(
                f"Cannot unapply {label}, nothing was unapplied: {why}, or migrate back no "
                f"further than {label}."
            )


def judge_plan(
    connection: BaseDatabaseWrapper,
    loader: MigrationLoader | Callable[[], MigrationLoader],
    plan: Iterable[tuple[Migration, bool]],
) -> Preflight:
    """Judge ``plan`` (Django's ``[(migration, backwards)]``) as one deploy.

    Only checked migrations are judged (their SQL collected); the others only advance the
    project state, so a plan with nothing checked (every app baselined, third-party apps)
    costs nothing here: not even the loader (``loader`` may be a callable building it) nor a
    query."""
    plan = list(plan)
    for migration, _backwards in plan:
        # A DELETE phase whose table no router assigns fails here, naming the table,
        # before anything runs (checked or not).
        for operation in migration.operations:
            own = getattr(operation, "migtools_routed", None)
            if own is not None:
                own(connection.alias, migration.app_label)
    checked = {(m.app_label, m.name) for m, _backwards in plan if is_checked(m)}
    found: list[Finding] = []
    new_tables: frozenset[str] = frozenset()
    if not checked:
        return Preflight(database=connection.alias)
    if callable(loader):
        loader = loader()
    forwards = {(m.app_label, m.name) for m, backwards in plan if not backwards}
    if forwards & checked:
        applied = set(loader.applied_migrations or {})
        verifier = Verifier(connection, loader, with_tests=False)
        report = verifier.run(forwards, one_deploy=True, deployed=applied, judged=checked)
        new_tables = report.new_tables
        for migration_report in report.migrations:
            found.extend(migration_report.findings)
    backwards = [m for m, back in plan if back and (m.app_label, m.name) in checked]
    if backwards:
        engine = Engine(connection, large_tables=large_tables(connection))
        for migration in backwards:
            state = loader.project_state((migration.app_label, migration.name), at_end=False)
            found.extend(engine.judge_backwards(migration, state).findings)
    return Preflight(
        [f for f in found if f.rule.about is About.DATABASE and f.level is not Level.OFF],
        new_tables,
        connection.alias,
    )
