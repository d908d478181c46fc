"""The rule catalogue: every check migtools makes on a migration, with why it is dangerous and
the safe recipe. One catalogue serves every caller; it is a leaf (no other migtools module is imported
here but settings, lazily).

Public API:

- ``CATALOGUE``: ``{rule_id: Rule}``; ``rule(rule_id)`` looks one up.
- ``Finding``: one rule broken by one operation (and, when SQL is involved, one statement).
- ``effective_level(rule_id, migration)``: the level after ``MIGTOOLS_RULES`` and the
  migration's ``ignore_rules``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.migrations.migration import Migration


class Level(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    OFF = "off"


class About(enum.StrEnum):
    """What a rule is about. ``migrate`` refuses only rules about the database; rules about
    the repository (tests, code hygiene) are verifier findings only."""

    DATABASE = "database"
    REPOSITORY = "repository"


class Stage(enum.StrEnum):
    """Where an operation runs, for stage-aware rules."""

    PRE_DEPLOY = "pre-deploy"  # an ordinary migration: runs while the old code is live
    POST_DEPLOYMENT = "post-deployment"  # is_post_deployment = True: the new code is live
    DELETE_PHASE = "delete-phase"  # SafeRemoveField/SafeDeleteModel(DeletionAction.DELETE)


@dataclass(frozen=True)
class Rule:
    id: str
    level: Level
    title: str
    why: str  # what is dangerous, which lock, for how long
    recipe: tuple[str, ...]  # the safe recipe, step by step
    lock: str = ""  # the PostgreSQL lock involved, if any
    allowed_in: frozenset[Stage] = frozenset()  # stages where the rule does not apply
    sql: bool = False  # judged on the SQL (pglast) rather than on the operation object
    about: About = About.DATABASE

    @property
    def first_step(self) -> str:
        """The recipe's first step, what a finding says to do by default."""
        return self.recipe[0]


EXPLAIN = "manage.py verify_migrations --explain {rule}"


def hint(rule_id: str) -> str:
    """The pointer every default finding ends with (the rule text ships in the package)."""
    return f"`{EXPLAIN.format(rule=rule_id)}` for why and the full recipe"


_LATER = frozenset({Stage.POST_DEPLOYMENT, Stage.DELETE_PHASE})

_RULES: tuple[Rule, ...] = (
    Rule(
        "not-null-without-db-default",
        Level.ERROR,
        "NOT NULL column added without db_default",
        "Adding a NOT NULL column without a database default to a table that has rows fails, "
        "and while the old code is still running its INSERTs do not set the new column, so they "
        "fail too. The ALTER TABLE takes an ACCESS EXCLUSIVE lock on the table.",
        (
            "Give the field `db_default=<value>` (a constant: PostgreSQL 11+ stores it in the "
            "catalogue without rewriting the table), or",
            "add it with `null=True`, deploy, backfill the rows, then make it NOT NULL in a "
            "later migration.",
        ),
        lock="ACCESS EXCLUSIVE",
        sql=True,
    ),
    Rule(
        "default-not-db-default",
        Level.ERROR,
        "default= where db_default= is meant",
        "Django applies `default=` only while adding the column and then drops it from the "
        "database: rows the old code inserts after the migration get no value, which breaks "
        "NOT NULL columns and leaves NULLs in nullable ones.",
        (
            "Replace `default=<value>` with `db_default=<value>` on the field (keep `default=` "
            "too only if Python-side instances need it before saving).",
            "Run makemigrations again so the migration and the model agree.",
        ),
        sql=True,
    ),
    Rule(
        "index-not-concurrent",
        Level.ERROR,
        "Index built without CONCURRENTLY on an existing table",
        "CREATE INDEX without CONCURRENTLY takes a SHARE lock on the table for the whole build: "
        "every INSERT, UPDATE and DELETE waits until the index is built, seconds to hours on a "
        "big table.",
        (
            "Set `atomic = False` on the migration (CONCURRENTLY cannot run in a transaction).",
            "Use `AddIndexConcurrently` / `RemoveIndexConcurrently` from "
            "`django.contrib.postgres.operations` (or the migtools backend, which builds "
            "indexes concurrently).",
            "If the table is large, make the migration `is_post_deployment = True`.",
        ),
        lock="SHARE",
        sql=True,
    ),
    Rule(
        "drop-index-not-concurrent",
        Level.WARNING,
        "Index dropped without CONCURRENTLY",
        "DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the index's table; "
        "it is quick itself but queues behind long queries and blocks every query queued "
        "after it.",
        (
            "Set `atomic = False` on the migration.",
            "Use `RemoveIndexConcurrently` (django.contrib.postgres.operations), or the "
            "migtools backend.",
        ),
        lock="ACCESS EXCLUSIVE",
        sql=True,
    ),
    Rule(
        "concurrently-in-atomic",
        Level.ERROR,
        "CONCURRENTLY inside an atomic migration",
        "CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction block: the migration "
        "fails when applied.",
        ("Set `atomic = False` on the migration and keep its statements safe to re-run.",),
        sql=True,
    ),
    Rule(
        "unique-constraint-on-existing-table",
        Level.ERROR,
        "UNIQUE constraint added to an existing table",
        "ADD CONSTRAINT ... UNIQUE builds its index while holding an ACCESS EXCLUSIVE lock on "
        "the table: no reads or writes for the whole build.",
        (
            "Build a unique index first, concurrently: `AddIndexConcurrently` with a unique "
            "`UniqueConstraint`'s fields, or `CREATE UNIQUE INDEX CONCURRENTLY` in a "
            "non-atomic migration.",
            "Then attach it: `ALTER TABLE ... ADD CONSTRAINT <name> UNIQUE USING INDEX <index>` "
            "(instant).",
        ),
        lock="ACCESS EXCLUSIVE",
        sql=True,
    ),
    Rule(
        "fk-not-valid-missing",
        Level.ERROR,
        "Foreign key added without NOT VALID",
        "ADD CONSTRAINT ... FOREIGN KEY checks every existing row while holding a SHARE ROW "
        "EXCLUSIVE lock on both tables: writes to either table wait for the whole scan.",
        (
            "Add the constraint with NOT VALID (instant; new rows are checked).",
            "Validate it in a separate step, `ALTER TABLE ... VALIDATE CONSTRAINT` (takes only "
            "SHARE UPDATE EXCLUSIVE), ideally in a non-atomic or later migration; the migtools "
            "backend does both.",
        ),
        lock="SHARE ROW EXCLUSIVE",
        sql=True,
    ),
    Rule(
        "check-constraint-not-valid-missing",
        Level.ERROR,
        "CHECK constraint added without NOT VALID",
        "ADD CONSTRAINT ... CHECK scans the whole table under an ACCESS EXCLUSIVE lock.",
        (
            "Add the constraint with NOT VALID (instant).",
            "Then `ALTER TABLE ... VALIDATE CONSTRAINT` (SHARE UPDATE EXCLUSIVE only); the "
            "migtools backend does both.",
        ),
        lock="ACCESS EXCLUSIVE",
        sql=True,
    ),
    Rule(
        "set-not-null",
        Level.ERROR,
        "SET NOT NULL on an existing column",
        "ALTER COLUMN ... SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock "
        "unless a validated CHECK (col IS NOT NULL) constraint already proves it.",
        (
            "Add `CHECK (col IS NOT NULL) NOT VALID`, then VALIDATE it (SHARE UPDATE EXCLUSIVE).",
            "Then SET NOT NULL (instant: PostgreSQL 12+ uses the constraint) and drop the "
            "CHECK; the migtools backend does this.",
        ),
        lock="ACCESS EXCLUSIVE",
        sql=True,
    ),
    Rule(
        "column-type-change",
        Level.ERROR,
        "Column type changed",
        "ALTER COLUMN ... TYPE rewrites the table and its indexes under an ACCESS EXCLUSIVE "
        "lock (except a few binary-compatible widenings such as varchar(n) -> varchar(m>n) or "
        "varchar -> text), and the old code keeps writing the old type.",
        (
            "Add a new column with the new type (nullable or with db_default).",
            "Write to both columns in the code, deploy, backfill the new column in batches.",
            "Switch reads to the new column, deploy; then remove the old one with "
            "SafeRemoveField (two phases). Keep the old name with `db_column` if needed.",
        ),
        lock="ACCESS EXCLUSIVE",
        sql=True,
    ),
    Rule(
        "rename-column",
        Level.ERROR,
        "Column renamed",
        "While the new code deploys, the old code still queries the old column name and fails. "
        "The rename takes an ACCESS EXCLUSIVE lock.",
        (
            "Keep the database name: rename the field in Python and set "
            "`db_column='<old name>'`, so no SQL runs.",
        ),
        lock="ACCESS EXCLUSIVE",
        sql=True,
    ),
    Rule(
        "rename-table",
        Level.ERROR,
        "Table renamed",
        "While the new code deploys, the old code still queries the old table name and fails. "
        "The rename takes an ACCESS EXCLUSIVE lock.",
        (
            "Keep the database name: rename the model in Python and set "
            "`Meta.db_table = '<old table>'`, so no SQL runs.",
        ),
        lock="ACCESS EXCLUSIVE",
        sql=True,
    ),
    Rule(
        "drop-column",
        Level.ERROR,
        "Column dropped outside the two-phase removal",
        "The old code still reads and writes the column while the new code deploys; dropping "
        "it first breaks every query that names it. DROP COLUMN takes an ACCESS EXCLUSIVE lock.",
        (
            "Make the field nullable (or give it db_default) and remove every code reference.",
            "Replace RemoveField with "
            "`SafeRemoveField(..., deletion_action=DeletionAction.MOVE_TO_PENDING)` (no SQL) "
            "and deploy.",
            "In a later migration: "
            "`SafeRemoveField(..., deletion_action=DeletionAction.DELETE)` drops the column.",
        ),
        lock="ACCESS EXCLUSIVE",
        allowed_in=_LATER,
        sql=True,
    ),
    Rule(
        "drop-table",
        Level.ERROR,
        "Table dropped outside the two-phase removal",
        "The old code still queries the table while the new code deploys; dropping it first "
        "breaks them. DROP TABLE takes an ACCESS EXCLUSIVE lock.",
        (
            "Remove every code reference to the model.",
            "Replace DeleteModel with "
            "`SafeDeleteModel(..., deletion_action=DeletionAction.MOVE_TO_PENDING)` (no SQL), "
            "with several databases, assign the table to its database (your router's "
            "`historical_db_for(table)`, or MIGTOOLS_HISTORICAL_TABLES), deploy.",
            "In a later migration: "
            "`SafeDeleteModel(..., deletion_action=DeletionAction.DELETE)` drops the table.",
        ),
        lock="ACCESS EXCLUSIVE",
        allowed_in=_LATER,
        sql=True,
    ),
    Rule(
        "run-sql-not-safe",
        Level.ERROR,
        "Plain RunSQL",
        "RunSQL runs whatever SQL it holds with no lock or statement timeout and no checks: one "
        "statement queued behind a long transaction blocks every query on the table.",
        (
            "Use `migtools.operations.SafeRunSQL` (same arguments): its SQL is parsed, checked "
            "against these rules and run under lock_timeout and statement_timeout.",
        ),
    ),
    Rule(
        "run-python-without-reverse",
        Level.ERROR,
        "RunPython without reverse_code",
        "The migration cannot be unapplied: a rollback after a bad deploy stops at it.",
        (
            "Pass `reverse_code=` (the inverse transformation, or "
            "`migrations.RunPython.noop` when undoing needs nothing).",
        ),
        about=About.REPOSITORY,
    ),
    Rule(
        "run-without-hints",
        Level.WARNING,
        "RunPython/RunSQL without hints in a project whose router reads them",
        "Django routes RunPython and RunSQL through `allow_migrate(db, app_label, **hints)`: "
        "without hints the router only sees the app label, so the code runs on the database "
        "the app is routed to, which may not be where the tables it touches live (Sentry's "
        "silos: a data migration of one app writing a model routed elsewhere). migtools "
        "raises this when one of DATABASE_ROUTERS has an allow_migrate that takes `**hints` "
        "and reads them (a heuristic on its source).",
        (
            "Pass `hints=` naming what the operation touches, as your router expects (e.g. "
            "`hints={'tables': ['app_model']}` or `hints={'silo': 'control'}`).",
            "Check with `manage.py sqlmigrate APP NAME --database ALIAS` (or "
            "`verify_migrations`, which lists each finding with its database) that it runs "
            "where its tables are.",
        ),
        about=About.REPOSITORY,
    ),
    Rule(
        "run-python-imports-model",
        Level.ERROR,
        "RunPython uses an imported model instead of the historical one",
        "A model class imported from the app's code has today's fields, not the fields at this "
        "point of the history: the migration breaks as soon as the model changes later.",
        (
            "Get the model from the historical registry: "
            "`Model = apps.get_model('app_label', 'Model')` inside the function.",
        ),
        about=About.REPOSITORY,
    ),
    Rule(
        "data-migration-without-test",
        Level.ERROR,
        "Data migration without a migration test",
        "A migration that transforms data is logic of its own; untested, a mistake corrupts "
        "production data and is found only after the deploy.",
        (
            "Write a `migtools.testing.TestMigrations` test with `app`, `migrate_from` (the "
            "migration before) and `migrate_to` naming this migration.",
            "Seed rows in `setup_before_migration(apps)`, assert the result in one `test_*` "
            "method.",
        ),
        about=About.REPOSITORY,
    ),
    Rule(
        "migration-test-multiple-methods",
        Level.OFF,
        "Migration test with several test_* methods",
        "Each test method of a migration test pays the whole migrate-down/seed/migrate-up "
        "cycle again without adding coverage. (Off by default: migtools' TestMigrations makes "
        "that cycle cheap.)",
        (
            "Seed every case in `setup_before_migration` and assert them all in one `test_*` "
            "method.",
        ),
        about=About.REPOSITORY,
    ),
    Rule(
        "identifier-too-long",
        Level.ERROR,
        "Identifier longer than 63 bytes",
        "PostgreSQL silently truncates identifiers to 63 bytes: two long names can collide, "
        "and the name in the database no longer matches the one Django and later migrations "
        "use.",
        ("Choose a shorter table, column, index or constraint name (at most 63 bytes).",),
        sql=True,
    ),
    Rule(
        "missing-is-post-deployment",
        Level.ERROR,
        "Migration does not state is_post_deployment",
        "Whether a migration runs before or after the new code is live decides what it may do; "
        "left implicit, a slow backfill or index build runs in the deploy's critical path.",
        (
            "Subclass `migtools.CheckedMigration` and set `is_post_deployment = False` "
            "(or True for slow backfills and index builds on big tables).",
            "`checked = False` is the visible opt-out for one migration.",
        ),
    ),
    Rule(
        "index-on-large-table-not-post-deployment",
        Level.ERROR,
        "Index on a large table in a pre-deploy migration",
        "Even built CONCURRENTLY, an index on a large table takes minutes, longer than the "
        "statement timeout of a pre-deploy migration, and holds the deploy back.",
        (
            "Move the index into its own migration with `is_post_deployment = True` and "
            "`atomic = False`, built concurrently.",
        ),
        lock="SHARE UPDATE EXCLUSIVE (concurrently) / SHARE",
        allowed_in=frozenset({Stage.POST_DEPLOYMENT}),
        sql=True,
    ),
    Rule(
        "schema-and-data-mixed",
        Level.WARNING,
        "Schema and data changes in one migration",
        "In one transaction the schema change's ACCESS EXCLUSIVE lock is held while the data "
        "migration runs, for as long as the backfill takes; outside one, a failure leaves a "
        "half-applied migration.",
        (
            "Split the migration: schema operations in one, RunPython/data RunSQL in the next "
            "(post-deployment if the backfill is large).",
        ),
        about=About.REPOSITORY,
    ),
    Rule(
        "exclusion-constraint",
        Level.ERROR,
        "Exclusion constraint added to an existing table",
        "An exclusion constraint cannot be added NOT VALID: ADD CONSTRAINT ... EXCLUDE builds "
        "its index and checks every row under an ACCESS EXCLUSIVE lock.",
        (
            "Create the constraint together with the table, or",
            "enforce the rule in application code or a trigger, and add the constraint in a "
            "maintenance window.",
        ),
        lock="ACCESS EXCLUSIVE",
        sql=True,
    ),
    Rule(
        "set-tablespace",
        Level.ERROR,
        "Table or index moved to another tablespace",
        "SET TABLESPACE copies the whole relation under an ACCESS EXCLUSIVE lock.",
        (
            "Do not move live tables in a migration; use a tool that copies online (e.g. "
            "pg_repack) in a maintenance window.",
        ),
        lock="ACCESS EXCLUSIVE",
        sql=True,
    ),
    Rule(
        "volatile-default",
        Level.ERROR,
        "Column added with a volatile default",
        "A volatile default (random(), clock_timestamp(), gen_random_uuid(), nextval()) "
        "cannot be stored in the catalogue: adding the column rewrites the whole table under an "
        "ACCESS EXCLUSIVE lock.",
        (
            "Add the column nullable without a default, deploy, backfill in batches, then add "
            "the default for new rows.",
        ),
        lock="ACCESS EXCLUSIVE",
        sql=True,
    ),
    Rule(
        "run-python-on-large-table",
        Level.WARNING,
        "RunPython writes to a large table",
        "A RunPython that updates a large table in one go holds the row locks of every row it "
        "touched until the migration commits: application writes to those rows wait for the "
        "whole backfill (seconds to hours), and a kill or a statement timeout throws all the "
        "work away.",
        (
            'Replace it with `migtools.operations.RunBackfill("app_label.Model", function, '
            "batch_size=...)`: `function(apps, batch)` gets one primary-key range at a time, "
            "each committed with its progress, resumable after a kill.",
            "Put it in its own migration with `atomic = False` and `is_post_deployment = True`.",
            "If a later migration needs the rows filled (e.g. NOT NULL), add "
            '`EnsureBackfilled("app_label", "migration_name")` to it.',
        ),
        lock="ROW EXCLUSIVE (row locks on every updated row)",
    ),
    Rule(
        "backfill-not-post-deployment",
        Level.WARNING,
        "RunBackfill in a pre-deploy migration",
        "A backfill walks the whole table: in a pre-deploy migration it holds the deploy back "
        "for as long as it takes, and the old code is still writing rows the new column "
        "expects.",
        (
            "Set `is_post_deployment = True` on the migration (`migrate --pre-deploy` defers it).",
            'With `MIGTOOLS_BACKFILL_RUNNER = "tasks"` the batches run on workers instead.',
        ),
        allowed_in=frozenset({Stage.POST_DEPLOYMENT}),
    ),
    Rule(
        "backfill-in-atomic-migration",
        Level.ERROR,
        "RunBackfill in an atomic migration",
        "RunBackfill commits each batch on its own, so that progress survives a kill and row "
        "locks are held for one batch only; inside the migration's transaction it cannot, and "
        "it refuses to run.",
        ("Set `atomic = False` on the migration (keep other operations out of it).",),
    ),
    Rule(
        "migration-edited-after-merge",
        Level.ERROR,
        "Migration edited after it was merged",
        "Django records a migration as applied by its name and never runs it again: every "
        "database that applied the merged version keeps that version's schema, while fresh "
        "databases (tests, new colleagues, a restored replica) get the edited one. Production "
        "and the code drift apart without an error. Whitespace, comments, docstrings, imports "
        "and migtools-only attributes (`is_post_deployment`, `ignore_rules`) are not edits.",
        (
            "Restore the merged version: `git checkout <base> -- <migration file>`.",
            "Make the change in a new migration (`python manage.py makemigrations`).",
            "If the edit must stay (it changes nothing a deployed database needs), say why on "
            'the migration: `ignore_rules = {"migration-edited-after-merge": "<reason>"}`.',
        ),
        about=About.REPOSITORY,
    ),
    Rule(
        "sql-not-collected",
        Level.WARNING,
        "SQL that cannot be collected without applying the earlier migrations",
        "migtools judges a migration on the SQL it would run, collected without running it. "
        "Some operations cannot say their SQL before the migrations ahead of them have run: "
        "one that looks the catalog up (AlterUniqueTogether or AlterIndexTogether removing a "
        "constraint of a table an empty database does not hold yet), a default the client "
        "cannot quote before an earlier migration registers its type (HStoreField(default={}) "
        "before the hstore extension exists), a custom operation whose database_forwards "
        "queries the database or raises. Such an operation is judged by the operation alone: "
        "the rules on its SQL (locks, defaults, indexes) are not applied to it. `migrate` "
        "still applies it as Django does.",
        (
            "Nothing to do when the migration is already deployed or only runs on empty "
            "databases (tests, new environments).",
            "For a migration still to deploy, read its SQL on a database where the migrations "
            "before it are applied: `manage.py sqlmigrate APP NAME` (or `verify_migrations APP "
            "NAME` there), and check it against the rules by hand.",
            "A custom operation can collect cleanly: build its SQL from the migration state "
            "(from_state/to_state) rather than from queries, and run queries only when "
            "`schema_editor.collect_sql` is False.",
        ),
    ),
)

CATALOGUE: dict[str, Rule] = {r.id: r for r in _RULES}


def rule(rule_id: str) -> Rule:
    try:
        return CATALOGUE[rule_id]
    except KeyError:
        raise KeyError(f"Unknown migtools rule {rule_id!r}") from None


def closest(rule_id: str) -> str | None:
    """The catalogue's rule id nearest to ``rule_id`` (a misspelling), if any is close."""
    import difflib

    match = difflib.get_close_matches(rule_id, list(CATALOGUE), n=1, cutoff=0.5)
    return match[0] if match else None


def explanation(rule_id: str) -> str:
    """What ``verify_migrations --explain RULE`` prints: title, level, why, lock and the full
    recipe, from the installed catalogue (raises ``KeyError`` for an unknown id)."""
    r = rule(rule_id)
    lines = [
        f"{r.id}: {r.title}",
        f"Default level: {r.level}. About: {r.about}.",
    ]
    if r.lock:
        lines.append(f"Lock: {r.lock}.")
    lines += ["", f"Why: {r.why}", "", "Safe recipe:"]
    lines += [f"  {n}. {step}" for n, step in enumerate(r.recipe, 1)]
    return "\n".join(lines)


@dataclass(frozen=True)
class Finding:
    """One rule broken by one operation (and statement, for SQL rules).

    ``operation_index`` is the 0-based position in ``migration.operations`` (None for
    migration-level findings); ``path``/``line`` locate the operation in the migration file
    for GitHub annotations (filled by the verifier; may be None at apply time).
    """

    rule_id: str
    level: Level
    message: str
    app_label: str = ""
    migration_name: str = ""
    operation_index: int | None = None
    operation: str | None = None
    sql: str | None = None
    statement_index: int | None = None  # index into the operation's collected statements
    path: str | None = None
    line: int | None = None
    database: str | None = None  # the alias whose SQL was judged (filled by the engine)
    # The aliases of a finding that holds on several databases alike, verified together
    # (``migtools.verifier.run.merge``: one finding, ``database`` the first of them).
    databases: tuple[str, ...] = ()

    @property
    def rule(self) -> Rule:
        return CATALOGUE[self.rule_id]

    @property
    def refuses(self) -> bool:
        """An error about the database: ``migrate`` refuses the plan for it."""
        return self.level is Level.ERROR and self.rule.about is About.DATABASE

    def where(self) -> str:
        """``path:line`` when known, else the migration's label."""
        if self.path:
            return f"{self.path}:{self.line or 1}"
        return f"{self.app_label}.{self.migration_name}"

    @property
    def aliases(self) -> tuple[str, ...]:
        """Every database this finding holds on (one, unless merged across several)."""
        if self.databases:
            return self.databases
        return (self.database,) if self.database else ()

    def on_database(self) -> str:
        """`` (database 'x')`` (`` (databases 'x' and 'y')`` for a finding that holds on
        several alike) when the alias is known and the project has several databases, else
        empty (one database: nothing to tell apart)."""
        from django.conf import settings

        aliases = self.aliases
        if not aliases or len(getattr(settings, "DATABASES", {})) < 2:
            return ""
        if len(aliases) == 1:
            return f" (database {aliases[0]!r})"
        names = [repr(alias) for alias in aliases]
        return f" (databases {', '.join(names[:-1])} and {names[-1]})"

    def describe(self) -> str:
        """A multi-line explanation: the message, why, and the recipe step by step."""
        r = self.rule
        steps = "\n".join(f"  {n}. {step}" for n, step in enumerate(r.recipe, 1))
        return f"{self.message}\nWhy: {r.why}\nSafe recipe:\n{steps}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "level": str(self.level),
            "message": self.message,
            "app_label": self.app_label,
            "migration": self.migration_name,
            "operation_index": self.operation_index,
            "operation": self.operation,
            "sql": self.sql,
            "path": self.path,
            "line": self.line,
            "about": str(self.rule.about),
            "database": self.database,
        }


def configured_levels() -> dict[str, Level]:
    """``MIGTOOLS_RULES`` validated: unknown ids or levels raise ``RuleConfigError``."""
    from migtools import conf as mt_settings
    from migtools.errors import RuleConfigError

    out: dict[str, Level] = {}
    for rule_id, value in mt_settings.rule_levels().items():
        if rule_id not in CATALOGUE:
            raise RuleConfigError(f"MIGTOOLS_RULES names an unknown rule {rule_id!r}.")
        try:
            out[rule_id] = Level(str(value))
        except ValueError:
            raise RuleConfigError(
                f"MIGTOOLS_RULES[{rule_id!r}] must be 'error', 'warning' or 'off', not {value!r}."
            ) from None
    return out


def effective_level(
    rule_id: str, migration: Migration | None = None, *, levels: dict[str, Level] | None = None
) -> Level:
    """The rule's level for this migration: ``ignore_rules`` on the migration turns it off,
    else ``MIGTOOLS_RULES`` (pass ``levels=configured_levels()`` to read settings once),
    else the catalogue's default."""
    if migration is not None and rule_id in (getattr(migration, "ignore_rules", None) or {}):
        return Level.OFF
    if levels is None:
        levels = configured_levels()
    return levels.get(rule_id, CATALOGUE[rule_id].level)


def stage_of(migration: Migration | None) -> Stage:
    if migration is not None and getattr(migration, "is_post_deployment", False) is True:
        return Stage.POST_DEPLOYMENT
    return Stage.PRE_DEPLOY
