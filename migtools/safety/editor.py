"""The migtools schema editor: lock-light DDL, timeouts on every statement, refusals.

Built on django-pg-zero-downtime-migrations' editor (its SQL templates: indexes built and
dropped CONCURRENTLY, FK and CHECK constraints added NOT VALID then validated, SET NOT NULL
through a validated CHECK, unique constraints attached to a concurrently built index, each
statement tagged with the lock it takes). migtools adds, per migration:

- which migration runs (``CheckedMigration.apply``/``unapply`` tell the editor). Checked
  migrations get the lock-light DDL and the refusals; every other migration (contrib,
  third-party, ``checked = False``, before ``MIGTOOLS_BASELINE``) gets Django's stock SQL;
- ``lock_timeout`` on every statement of every migration, ``statement_timeout`` on checked
  pre-deploy migrations (none for post-deployment ones), none for statements that take at most
  SHARE UPDATE EXCLUSIVE; both restored when the migration ends (they never leak);
- lock-timeout retries with backoff: the statement alone outside a transaction, the whole
  migration (rolled back to a savepoint, which releases its locks) inside an atomic one;
- the migration's ``atomic`` honoured (the upstream editor forces it off): in a transaction,
  lock-light DDL on an existing table is refused with the recipe (``atomic = False``).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pglast
import pglast.parser
from django.contrib.postgres.constraints import ExclusionConstraint
from django.db import transaction
from django.db.backends.ddl_references import Statement
from django.db.backends.postgresql.schema import (
    DatabaseSchemaEditor as PostgresDatabaseSchemaEditor,
)
from django_zero_downtime_migrations.backends.postgres import (  # type: ignore[import-untyped]
    schema as zd,
)

from migtools import conf as mt_settings
from migtools.errors import LockTimeoutError
from migtools.safety import faults, retry
from migtools.safety import policy as enforcement

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration
    from django.db.migrations.state import ProjectState
    from django.db.models import Field, Model

logger = logging.getLogger("migtools.apply")

# The upstream editor warns about what migtools refuses itself (or was told to allow).
warnings.filterwarnings("ignore", category=zd.UnsafeOperationWarning)

MAX_IDENTIFIER_BYTES = 63

ZDMixin: Any = zd.DatabaseSchemaEditorMixin
_ZD_TEMPLATES = [
    name
    for name, value in vars(zd.DatabaseSchemaEditorMixin).items()
    if name.startswith("sql_") and not isinstance(value, property)
]


class MigtoolsSchemaEditorMixin(ZDMixin):  # type: ignore[misc]
    """Mix into a PostgreSQL schema editor (before it in the bases), e.g. for PostGIS::

    class DatabaseSchemaEditor(MigtoolsSchemaEditorMixin, PostGISSchemaEditor): ...
    """

    deferred_sql: list[Any]

    def __init__(
        self, connection: BaseDatabaseWrapper, collect_sql: bool = False, atomic: bool = True
    ) -> None:
        super().__init__(connection, collect_sql=collect_sql, atomic=atomic)
        # The upstream editor forces atomic off; migtools honours the migration's choice.
        self.atomic_migration = connection.features.can_rollback_ddl and atomic
        self.RAISE_FOR_UNSAFE = False
        self.DEFERRED_SQL = True
        self.LOCK_TIMEOUT = None
        self.STATEMENT_TIMEOUT = None
        self.IDEMPOTENT_SQL = False
        self.migtools_migration: Migration | None = None
        self.migtools_checked = False
        self.migtools_backwards = False
        self.migtools_new_tables: set[str] = set()
        # What a collecting editor (sqlmigrate, the verifier) would have refused when
        # migrating: (rule id, message), in order.
        self.migtools_refusals: list[tuple[str, str]] = []
        self._allowed: set[str] = set()
        self._delete_phase = False
        self._saved_timeouts: tuple[str, str] | None = None
        self._statement_timeout: str | None = None
        self._large: dict[str, bool] = {}

    # -- mode ----------------------------------------------------------------------------

    @property
    def _stock(self) -> bool:
        return not self.migtools_checked

    def _stock_call(self, name: str) -> Callable[..., Any]:
        """The method as the next editor after the upstream mixin defines it (Django's, or
        PostGIS')."""
        return getattr(super(zd.DatabaseSchemaEditorMixin, self), name)  # type: ignore[no-any-return]

    @property
    def EXPLICIT_CONSTRAINTS_DROP(self) -> bool:
        return self.migtools_checked

    @EXPLICIT_CONSTRAINTS_DROP.setter
    def EXPLICIT_CONSTRAINTS_DROP(self, value: bool) -> None:
        pass

    # -- timeouts ------------------------------------------------------------------------

    def _set(self, name: str, value: str) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, %s, false)", [name, value])

    def __enter__(self) -> MigtoolsSchemaEditorMixin:
        super().__enter__()
        if not self.collect_sql:
            with self.connection.cursor() as cursor:
                cursor.execute(
                    "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
                )
                row = cursor.fetchone()
            assert row is not None
            self._saved_timeouts = (str(row[0]), str(row[1]))
            self._set("lock_timeout", mt_settings.lock_timeout())
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        try:
            if exc_type is None:
                deferred, self.deferred_sql = self.deferred_sql, []
                for sql in deferred:
                    self.execute(sql, None)
        except BaseException:
            self._restore_timeouts(failed=True)
            super().__exit__(*_exc_info())
            raise
        self._restore_timeouts(failed=exc_type is not None)
        super().__exit__(exc_type, exc_value, traceback)

    def _restore_timeouts(self, failed: bool) -> None:
        saved, self._saved_timeouts = self._saved_timeouts, None
        if saved is None:
            return
        if failed and self.connection.in_atomic_block:
            return  # the rollback undoes the SETs made inside the transaction
        try:
            self._set("lock_timeout", saved[0])
            self._set("statement_timeout", saved[1])
        except Exception:  # a broken connection: its settings die with it
            logger.debug("could not restore timeouts", exc_info=True)

    @contextmanager
    def _no_statement_timeout(self, light: bool) -> Iterator[None]:
        """Statements taking at most SHARE UPDATE EXCLUSIVE run without statement_timeout."""
        if not light or self._statement_timeout is None or self.collect_sql:
            yield
            return
        self._set("statement_timeout", "0")
        try:
            yield
        finally:
            self._set("statement_timeout", self._statement_timeout)

    # -- which migration runs -----------------------------------------------------------

    def migtools_begin(self, migration: Migration, backwards: bool = False) -> None:
        """Tell the editor which migration's SQL it builds (a collecting editor, e.g. the
        verifier's, calls this so it sees the SQL ``migrate`` would run)."""
        self.migtools_migration = migration
        self.migtools_backwards = backwards
        self.migtools_checked = enforcement.is_checked(migration)

    def migtools_run(
        self,
        migration: Migration,
        inner: Callable[[ProjectState, Any, bool], ProjectState],
        project_state: ProjectState,
        collect_sql: bool,
        backwards: bool,
    ) -> ProjectState:
        """Called by ``CheckedMigration.apply``/``unapply``: run it checked, under timeouts,
        retrying lock timeouts (the whole migration when it is atomic)."""
        self.migtools_begin(migration, backwards=backwards)
        if not self.migtools_checked:
            return inner(project_state, self, collect_sql)
        post = bool(getattr(migration, "is_post_deployment", False))
        if not collect_sql:
            enforcement.check_structure(migration)
            enforcement.check_operations(migration)
            self._statement_timeout = mt_settings.statement_timeout(post)
            self._set("statement_timeout", self._statement_timeout or "0")
            self.IDEMPOTENT_SQL = not self.atomic_migration
        with faults.translated(
            self.connection,
            enforcement.label(migration),
            atomic=self.atomic_migration,
            statement_timeout_=self._statement_timeout,
            post_deployment=post,
        ):
            if collect_sql or not self.atomic_migration:
                return inner(project_state, self, collect_sql)
            return self._run_atomic_with_retries(migration, inner, project_state)

    def _run_atomic_with_retries(
        self,
        migration: Migration,
        inner: Callable[[ProjectState, Any, bool], ProjectState],
        project_state: ProjectState,
    ) -> ProjectState:
        policy = retry.Policy.from_settings()
        pristine = project_state.clone() if policy.retries else project_state
        state = [project_state]
        new_tables = set(self.migtools_new_tables)

        def attempt() -> ProjectState:
            try:
                with transaction.atomic(self.connection.alias):
                    result = inner(state[0], self, False)
                    deferred, self.deferred_sql = self.deferred_sql, []
                    for sql in deferred:
                        self.execute(sql, None)
                    return result
            except Exception:
                self.deferred_sql = []
                self.migtools_new_tables = set(new_tables)
                raise

        def again() -> None:
            state[0] = pristine.clone()

        def say(progress: retry.Progress) -> None:
            logger.warning(
                "migtools: %s: lock_timeout (%s) hit; rolled the migration back to release "
                "its locks, retrying it in %.1fs (retry %d of %d, %.1fs waited so far)",
                enforcement.label(migration),
                mt_settings.lock_timeout(),
                progress.wait,
                progress.attempt,
                progress.retries,
                progress.waited,
            )

        try:
            return retry.run(attempt, policy, before_retry=again, on_retry=say)
        except retry.Exhausted as exhausted:
            raise LockTimeoutError(
                retry.gave_up(
                    enforcement.label(migration),
                    "the whole migration (atomic)",
                    exhausted,
                    "Each attempt was rolled back: nothing of the migration was applied.",
                )
            ) from exhausted.__cause__

    @contextmanager
    def migtools_allow(self, *rule_ids: str, delete_phase: bool = False) -> Iterator[None]:
        """Let an operation that is the safe form (e.g. a DELETE-phase drop) run SQL that a
        rule would otherwise refuse."""
        before, before_phase = set(self._allowed), self._delete_phase
        self._allowed |= set(rule_ids)
        self._delete_phase = self._delete_phase or delete_phase
        try:
            yield
        finally:
            self._allowed, self._delete_phase = before, before_phase

    def _refuse(self, rule_id: str, message: str) -> None:
        if self._stock or rule_id in self._allowed:
            return
        if self.collect_sql:
            self.migtools_refusals.append((rule_id, message))
            return
        enforcement.refuse(
            rule_id,
            self.migtools_migration,
            message,
            stage_=enforcement.stage(self.migtools_migration, delete_phase=self._delete_phase),
        )

    def _is_new(self, table: str | None) -> bool:
        return table is not None and table in self.migtools_new_tables

    def _is_large(self, table: str) -> bool:
        if table in mt_settings.large_tables():
            return True
        if self.collect_sql:
            return False
        if table not in self._large:
            with self.connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)",
                    [self.quote_name(table)],
                )
                row = cursor.fetchone()
            self._large[table] = bool(row and row[0] > mt_settings.large_table_rows())
        return self._large[table]

    # -- identifiers ---------------------------------------------------------------------

    def quote_name(self, name: str) -> str:
        if not self._stock and len(name.strip('"').encode()) > MAX_IDENTIFIER_BYTES:
            self._refuse(
                "identifier-too-long",
                f"identifier {name!r} is {len(name.encode())} bytes; PostgreSQL keeps only "
                f"{MAX_IDENTIFIER_BYTES}",
            )
        return super().quote_name(name)  # type: ignore[no-any-return]

    # -- schema operations ---------------------------------------------------------------

    def create_model(self, model: type[Model]) -> None:
        self.migtools_new_tables.add(model._meta.db_table)
        super().create_model(model)

    def delete_model(self, model: type[Model]) -> None:
        if self._stock:
            return self._stock_call("delete_model")(model)  # type: ignore[no-any-return]
        table = model._meta.db_table
        if not self.migtools_backwards and not self._is_new(table):
            self._refuse("drop-table", f"DeleteModel drops table {table!r}")
        return super().delete_model(model)  # type: ignore[no-any-return]

    def add_field(self, model: type[Model], field: Field[Any, Any]) -> None:
        if self._stock:
            return self._stock_call("add_field")(model, field)  # type: ignore[no-any-return]
        table = model._meta.db_table
        if (
            not self.migtools_backwards
            and not self._is_new(table)
            and not field.many_to_many
            and not getattr(field, "generated", False)
            and not field.has_db_default()
        ):
            where = f"{table}.{field.column}"
            if field.has_default():
                self._refuse(
                    "default-not-db-default",
                    f"AddField {where} has default= but no db_default=: the database gets no "
                    "default, so rows the running code inserts miss it",
                )
            elif not field.null:
                self._refuse(
                    "not-null-without-db-default",
                    f"AddField {where} is NOT NULL without db_default",
                )
        return super().add_field(model, field)  # type: ignore[no-any-return]

    def remove_field(self, model: type[Model], field: Field[Any, Any]) -> None:
        if self._stock:
            return self._stock_call("remove_field")(model, field)  # type: ignore[no-any-return]
        table = model._meta.db_table
        if not self.migtools_backwards and not self._is_new(table):
            self._refuse("drop-column", f"RemoveField drops column {table}.{field.column}")
        return super().remove_field(model, field)  # type: ignore[no-any-return]

    def alter_field(
        self,
        model: type[Model],
        old_field: Field[Any, Any],
        new_field: Field[Any, Any],
        strict: bool = False,
    ) -> None:
        if self._stock:
            return self._stock_call("alter_field")(  # type: ignore[no-any-return]
                model, old_field, new_field, strict
            )
        return super().alter_field(model, old_field, new_field, strict)  # type: ignore[no-any-return]

    def _alter_column_type_sql(
        self,
        model: type[Model],
        old_field: Field[Any, Any],
        new_field: Field[Any, Any],
        new_type: str,
        old_collation: str,
        new_collation: str,
    ) -> Any:
        if self._stock:
            return self._stock_call("_alter_column_type_sql")(
                model, old_field, new_field, new_type, old_collation, new_collation
            )
        old_type = old_field.db_parameters(connection=self.connection)["type"]
        table = model._meta.db_table
        if not self._is_new(table) and not self._immediate_type_cast(old_type, new_type):
            self._refuse(
                "column-type-change",
                f"AlterField changes {table}.{new_field.column} from {old_type} to {new_type}, "
                "which rewrites the table",
            )
        return super()._alter_column_type_sql(
            model, old_field, new_field, new_type, old_collation, new_collation
        )

    def _alter_column_null_sql(
        self, model: type[Model], old_field: Field[Any, Any], new_field: Field[Any, Any]
    ) -> Any:
        if self._stock or self._is_new(model._meta.db_table):
            return self._stock_call("_alter_column_null_sql")(model, old_field, new_field)
        return super()._alter_column_null_sql(model, old_field, new_field)

    def _iter_column_sql(self, *args: Any) -> Iterator[str]:
        if self._stock:
            return self._stock_call("_iter_column_sql")(*args)  # type: ignore[no-any-return]
        return super()._iter_column_sql(*args)  # type: ignore[no-any-return]

    def _rename_field_sql(
        self, table: str, old_field: Field[Any, Any], new_field: Field[Any, Any], new_type: str
    ) -> str:
        if not self._is_new(table):
            self._refuse(
                "rename-column",
                f"renames column {table}.{old_field.column} to {new_field.column}",
            )
        return self._stock_call("_rename_field_sql")(  # type: ignore[no-any-return]
            table, old_field, new_field, new_type
        )

    def alter_db_table(self, model: type[Model], old_db_table: str, new_db_table: str) -> None:
        if old_db_table != new_db_table and not self._is_new(old_db_table):
            self._refuse("rename-table", f"renames table {old_db_table!r} to {new_db_table!r}")
        if self._is_new(old_db_table):
            self.migtools_new_tables.add(new_db_table)
        self._stock_call("alter_db_table")(model, old_db_table, new_db_table)

    def alter_db_tablespace(
        self, model: type[Model], old_db_tablespace: str, new_db_tablespace: str
    ) -> None:
        if not self._is_new(model._meta.db_table):
            self._refuse(
                "set-tablespace",
                f"moves table {model._meta.db_table!r} to tablespace {new_db_tablespace!r}",
            )
        self._stock_call("alter_db_tablespace")(model, old_db_tablespace, new_db_tablespace)

    def add_constraint(self, model: type[Model], constraint: Any) -> None:
        if isinstance(constraint, ExclusionConstraint) and not self._is_new(model._meta.db_table):
            self._refuse(
                "exclusion-constraint",
                f"adds exclusion constraint {constraint.name!r} to {model._meta.db_table!r}",
            )
        if self._stock:
            return self._stock_call("add_constraint")(model, constraint)  # type: ignore[no-any-return]
        # The upstream editor only warns about exclusion constraints; skip its override.
        PostgresDatabaseSchemaEditor.add_constraint(self, model, constraint)
        return None

    # -- statements ----------------------------------------------------------------------

    def migtools_collect(self, sql: Any) -> list[str]:
        """The statements ``execute(sql)`` would run, as text, for a collecting editor (the
        verifier reads deferred SQL through this, as ``migrate`` would run it)."""
        start = len(self.collected_sql)
        self.execute(sql, None)
        statements = self.collected_sql[start:]
        del self.collected_sql[start:]
        return [str(s) for s in statements]

    def execute(self, sql: Any, params: Any = ()) -> None:
        if sql is zd.DUMMY_SQL:
            return
        if isinstance(sql, zd.MultiStatementSQL):
            statements: list[Any] = list(sql)
        elif isinstance(sql, Statement) and isinstance(sql.template, zd.MultiStatementSQL):
            statements = [Statement(s, **sql.parts) for s in sql.template]
        else:
            statements = [sql]
        for statement in statements:
            self._execute_one(statement, params)

    def _execute_one(self, statement: Any, params: Any) -> None:
        condition = None
        light = False
        table: str | None = None
        if isinstance(statement, zd.PGLock):
            light = isinstance(statement, zd.PGShareUpdateExclusive)
            condition = statement.idempotent_condition
            statement = statement.sql
        elif isinstance(statement, Statement) and isinstance(statement.template, zd.PGLock):
            lock = statement.template
            light = isinstance(lock, zd.PGShareUpdateExclusive)
            if lock.idempotent_condition is not None:
                condition = lock.idempotent_condition % statement.parts
            statement = Statement(lock.sql, **statement.parts)
        if isinstance(statement, Statement):
            ref = statement.parts.get("table")
            table = getattr(ref, "table", None)
        if not self._stock:
            statement, light = self._judge(statement, table, light)
            if statement is None:
                return
        with self._no_statement_timeout(light):
            self._execute_with_retries(statement, params, condition)

    def _judge(self, statement: Any, table: str | None, light: bool) -> tuple[Any, bool]:
        """Refusals that depend on the statement; in a transaction, lock-light DDL that cannot
        run there becomes the plain form on new tables and is refused on existing ones."""
        if isinstance(statement, str):
            # Already-formatted SQL (e.g. the upstream NOT NULL sequence): read its table.
            template: Any = statement
            table = table or _table_of(statement)
        else:
            template = statement.template if isinstance(statement, Statement) else None
        text = template if isinstance(template, str) else ""
        upper = text.upper()
        is_index = upper.startswith("CREATE") and " INDEX " in f" {upper} "
        if is_index and table is not None and not self._is_new(table) and self._is_large(table):
            self._refuse(
                "index-on-large-table-not-post-deployment",
                f"builds an index on large table {table!r} in a pre-deploy migration",
            )
        # A collecting editor (sqlmigrate, the verifier) runs in no transaction: judge it as
        # the migration will run, atomic or not.
        in_transaction = self.connection.in_atomic_block or (
            self.collect_sql and self.atomic_migration
        )
        if not in_transaction or template is None:
            return statement, light
        new = self._is_new(table)
        if "CONCURRENTLY" in upper:
            if upper.startswith("REINDEX"):
                return None, light
            if not new:
                rule = "index-not-concurrent" if is_index else "drop-index-not-concurrent"
                self._refuse(
                    rule,
                    f"{'builds' if is_index else 'drops'} an index on existing table {table!r} "
                    "inside a transaction (atomic migration), where CONCURRENTLY cannot run",
                )
            plain = text.replace(" CONCURRENTLY", "")
            if isinstance(statement, str):
                return plain, False
            return Statement(plain, **statement.parts), False
        if "NOT VALID" in upper and not new:
            if "FOREIGN KEY" in upper:
                rule = "fk-not-valid-missing"
            elif "IS NOT NULL" in upper:
                rule = "set-not-null"
            else:
                rule = "check-constraint-not-valid-missing"
            self._refuse(
                rule,
                f"NOT VALID + VALIDATE on existing table {table!r} inside a transaction "
                "(atomic migration) holds the lock for the whole scan; set atomic = False",
            )
        return statement, light

    def _execute_with_retries(self, statement: Any, params: Any, condition: Any = None) -> None:
        """Run one statement; outside a transaction, retry it on lock timeouts. Each attempt
        first drops the INVALID indexes an earlier timed-out or interrupted concurrent build
        of it left (this run's or a previous run's), then checks whether it already applied."""
        base_execute = super(zd.DatabaseSchemaEditorMixin, self).execute
        if self.collect_sql or self.connection.in_atomic_block:
            if not self._skip_applied(condition):
                base_execute(statement, params)
            return
        sql = str(statement)
        label = enforcement.label(self.migtools_migration)
        dropped: list[str] = []

        def attempt() -> None:
            dropped.extend(retry.drop_invalid_leftovers(self.connection, sql))
            if not self._skip_applied(condition):
                base_execute(statement, params)

        def say(progress: retry.Progress) -> None:
            logger.warning(
                "migtools: %s: lock_timeout (%s) hit; retrying the statement in %.1fs "
                "(retry %d of %d, %.1fs waited so far): %s",
                label,
                mt_settings.lock_timeout(),
                progress.wait,
                progress.attempt,
                progress.retries,
                progress.waited,
                statement,
            )

        try:
            retry.run(attempt, retry.Policy.from_settings(), on_retry=say)
        except retry.Exhausted as exhausted:
            stuck = retry.try_drop_invalid_leftovers(self.connection, sql, dropped)
            raise LockTimeoutError(
                retry.gave_up(
                    label, f"statement {statement}", exhausted, _left_behind(dropped, stuck)
                )
            ) from exhausted.__cause__


def _left_behind(dropped: list[str], stuck: list[str]) -> str:
    """The truth about what the retried statement left (outside a transaction)."""
    done = (
        "The migration is not recorded as applied; statements of it that ran before this one "
        "stay applied."
    )
    if stuck:
        return (
            f"The timed-out index build left INVALID index(es) {', '.join(stuck)} (unused by "
            "queries) that could not be dropped within lock_timeout either; the next migrate "
            f"drops them before building again. {done}"
        )
    if dropped:
        return (
            f"The INVALID index(es) the timed-out build left ({', '.join(sorted(set(dropped)))}) "
            f"were dropped; nothing of this statement remains. {done}"
        )
    return f"The statement changed nothing. {done}"


def _exc_info() -> tuple[Any, Any, Any]:
    import sys

    return sys.exc_info()


def _template_property(name: str) -> property:
    def get(self: MigtoolsSchemaEditorMixin) -> Any:
        if self._stock:
            return getattr(super(zd.DatabaseSchemaEditorMixin, self), name)
        return getattr(zd.DatabaseSchemaEditorMixin, name)

    return property(get)


for _name in _ZD_TEMPLATES:
    setattr(MigtoolsSchemaEditorMixin, _name, _template_property(_name))


class DatabaseSchemaEditor(MigtoolsSchemaEditorMixin, PostgresDatabaseSchemaEditor):
    pass


def _table_of(sql: str) -> str | None:
    """The table an ALTER TABLE / CREATE INDEX statement works on (parsed, not matched)."""
    try:
        statements = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        return None
    if not statements:
        return None
    relation = getattr(statements[0].stmt, "relation", None)
    name = getattr(relation, "relname", None)
    return str(name) if name else None
