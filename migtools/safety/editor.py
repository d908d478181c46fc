"""The migtools schema editor: lock-light DDL and timeouts on every statement. It judges
nothing: the rule engine (``migtools.rules.engine``) judges the SQL it emits.

Built on django-pg-zero-downtime-migrations' editor (its SQL templates: indexes built and
dropped CONCURRENTLY, FK and CHECK constraints added NOT VALID then validated, SET NOT NULL
through a validated CHECK, unique constraints attached to a concurrently built index, each
statement tagged with the lock it takes). migtools adds, per migration:

- which migration runs (``CheckedMigration.apply``/``unapply`` tell the editor). Checked
  non-atomic migrations get the lock-light DDL; inside a transaction (an atomic migration)
  lock-light DDL cannot do its job, so the editor emits the plain forms that run there
  (Django's stock SQL), and the SQL rules judge those; every other migration (contrib,
  third-party, ``checked = False``, before ``MIGTOOLS_BASELINE``) gets Django's stock SQL;
- the apply-time backstop: before a checked migration runs forwards, the rule engine judges
  it on the same connection and state (a collecting editor), and any error-level finding
  about the database refuses it with ``UnsafeMigrationError`` (``migrate``'s preflight has
  judged the whole plan before; this catches every other way in, e.g. ``call_command`` or a
  test runner);
- ``lock_timeout`` on every statement of every migration, ``statement_timeout`` on checked
  pre-deploy migrations (none for post-deployment ones), none for statements that take at most
  SHARE UPDATE EXCLUSIVE; both restored when the migration ends (they never leak);
- lock-timeout retries with backoff: the statement alone outside a transaction, the whole
  migration (rolled back to a savepoint, which releases its locks) inside an atomic one;
- the migration's ``atomic`` honoured (the upstream editor forces it off).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.backends.ddl_references import Statement
from django.db.backends.postgresql.schema import (
    DatabaseSchemaEditor as PostgresDatabaseSchemaEditor,
)
from django_zero_downtime_migrations.backends.postgres import (  # type: ignore[import-untyped]
    schema as zd,
)

from migtools import conf as mt_settings
from migtools.errors import LockTimeoutError, UnsafeMigrationError
from migtools.rules import scope
from migtools.safety import blockers, deploy, faults, retry

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration
    from django.db.migrations.state import ProjectState
    from django.db.models import Field, Model

logger = logging.getLogger("migtools.apply")


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
        features = connection.features
        own_flag = "supports_combined_alters" in vars(features)
        combined = features.supports_combined_alters
        super().__init__(connection, collect_sql=collect_sql, atomic=atomic)
        # The upstream editor turns combined ALTERs off for the whole connection; migtools
        # turns them off only around its own lock-light ALTER COLUMNs (``alter_field``).
        if own_flag:
            features.supports_combined_alters = combined
        else:
            del features.supports_combined_alters
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
        # Already in a transaction (e.g. a test's): lock-light DDL could not run either.
        self._outer_atomic = bool(connection.in_atomic_block) and not collect_sql
        # The session's timeouts before ours (restored at the end), or None: not set yet, or
        # set with SET LOCAL (the editor's own transaction ends with it and restores them).
        self._saved_timeouts: tuple[str, str] | None = None
        self._timeouts_applied = False
        self._local_timeouts = False
        self._statement_timeout: str | None = None
        self._statement_timeout_set = False
        self._setting_timeouts = False
        self._timeouts_depth = 0
        self._watching = False
        self._quiet: warnings.catch_warnings[None] | None = None
        # The last query that hit lock_timeout (its tables name the lock it waited for).
        self._lock_waited_sql = ""
        # What a failed statement of a non-atomic migration left (an INVALID index dropped).
        self._failure_left = ""

    # -- mode ----------------------------------------------------------------------------

    @property
    def _stock(self) -> bool:
        """Django's stock SQL: unchecked migrations, and checked ones that run in a
        transaction (where CONCURRENTLY cannot run and NOT VALID + VALIDATE gains nothing)."""
        return not self.migtools_checked or self.atomic_migration or self._outer_atomic

    def _stock_call(self, name: str) -> Callable[..., Any]:
        """The method as the next editor after the upstream mixin defines it (Django's, or
        PostGIS')."""
        return getattr(super(zd.DatabaseSchemaEditorMixin, self), name)  # type: ignore[no-any-return]

    @property
    def EXPLICIT_CONSTRAINTS_DROP(self) -> bool:
        return not self._stock

    @EXPLICIT_CONSTRAINTS_DROP.setter
    def EXPLICIT_CONSTRAINTS_DROP(self, value: bool) -> None:
        pass

    # -- timeouts ------------------------------------------------------------------------

    def _set(self, name: str, value: str) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, %s, %s)", [name, value, self._local_timeouts])

    def __enter__(self) -> MigtoolsSchemaEditorMixin:
        # The upstream editor warns about what the rule engine judges; silence it for this
        # editor only (never process-wide).
        self._quiet = warnings.catch_warnings()
        self._quiet.__enter__()
        warnings.simplefilter("ignore", zd.UnsafeOperationWarning)
        super().__enter__()
        if not self.collect_sql:
            self._watching = True
            self.connection.execute_wrappers.append(self._before_query)
        return self

    def _before_query(
        self, execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: Any
    ) -> Any:
        """Every query on the connection while the editor is open (DDL, a RunPython's ORM
        queries): the migration's timeouts go in before the first one."""
        if self._watching and not self._timeouts_applied:
            self._apply_timeouts()
        try:
            return execute(sql, params, many, context)
        except Exception as exc:
            if faults.is_lock_timeout(exc):
                self._lock_waited_sql = str(sql)
            raise

    def _stop_watching(self) -> None:
        if self._watching:
            self._watching = False
            self.connection.execute_wrappers.remove(self._before_query)

    def _in_migration(self) -> bool:
        """A migration runs in this editor: a ``CheckedMigration`` told it so, or ``migrate``
        is applying a plan on this connection. Any other editor (a bare ``schema_editor()``,
        e.g. in a test) is Django's: no timeouts of ours."""
        return self.migtools_migration is not None or deploy.is_applying(self.connection)

    def _apply_timeouts(self) -> None:
        """Right before the first statement the editor runs (an editor that runs none issues
        no query): save the session's timeouts, set ``lock_timeout`` (and the checked
        migration's ``statement_timeout``); ``__exit__`` restores them."""
        if (
            self.collect_sql
            or self._timeouts_applied
            or self._setting_timeouts
            or not self._in_migration()
        ):
            return
        self._setting_timeouts = True
        try:
            self._set_timeouts()
        finally:
            self._setting_timeouts = False

    def _set_timeouts(self) -> None:
        values = [mt_settings.lock_timeout()]
        sets = "set_config('lock_timeout', %s, {local})"
        if self._statement_timeout_set:
            values.append(self._statement_timeout or "0")
            sets += ", set_config('statement_timeout', %s, {local})"
        atomic = getattr(self, "atomic", None)
        blocks = getattr(self.connection, "atomic_blocks", ())
        self._timeouts_depth = len(self.connection.savepoint_ids)
        with self.connection.cursor() as cursor:
            if self.atomic_migration and atomic is not None and list(blocks) == [atomic]:
                # The editor's transaction is the outermost: SET LOCAL, which its end undoes
                # (one round trip per migration, nothing to restore).
                self._local_timeouts = True
                cursor.execute("SELECT " + sets.format(local="true"), values)
            else:
                cursor.execute(
                    "SELECT current_setting('lock_timeout'), current_setting('statement_timeout'), "
                    + sets.format(local="false"),
                    values,
                )
                row = cursor.fetchone()
                assert row is not None
                self._saved_timeouts = (str(row[0]), str(row[1]))
        self._timeouts_applied = True

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        try:
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
        finally:
            self._stop_watching()
            quiet, self._quiet = self._quiet, None
            if quiet is not None:
                quiet.__exit__(None, None, None)

    def _restore_timeouts(self, failed: bool) -> None:
        self._stop_watching()
        saved, self._saved_timeouts = self._saved_timeouts, None
        if saved is None:
            return
        if failed and self.connection.in_atomic_block:
            return  # the rollback undoes the SETs made inside the transaction
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('lock_timeout', %s, false), "
                    "set_config('statement_timeout', %s, false)",
                    list(saved),
                )
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
        self.migtools_checked = scope.is_checked(migration)

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
            if not backwards:
                self._backstop(migration, project_state)
            self._statement_timeout = mt_settings.statement_timeout(post)
            self._statement_timeout_set = True
            if self._timeouts_applied:  # a query ran already: set it now
                self._set("statement_timeout", self._statement_timeout or "0")
            self.IDEMPOTENT_SQL = not self.atomic_migration
        operations = (
            faults.Operations(migration, backwards)
            if not collect_sql and not self.atomic_migration
            else None
        )
        self._failure_left = ""
        with faults.translated(
            self.connection,
            scope.label(migration),
            atomic=self.atomic_migration,
            statement_timeout_=self._statement_timeout,
            post_deployment=post,
            operations=operations,
            left=lambda: self._failure_left,
        ):
            if operations is not None:
                with operations.watching():
                    return inner(project_state, self, collect_sql)
            if collect_sql:
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
            timeouts_set = self._timeouts_applied
            depth = len(self.connection.savepoint_ids)
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
                if not timeouts_set and self._timeouts_depth > depth:
                    # set inside the savepoint: rolled back with it
                    self._timeouts_applied = False
                    self._saved_timeouts = None
                raise

        def again() -> None:
            state[0] = pristine.clone()

        def say(progress: retry.Progress) -> None:
            logger.warning(
                "migtools: %s: lock_timeout (%s) hit%s; rolled the migration back to release "
                "its locks, retrying it in %.1fs (retry %d of %d, %.1fs waited so far)",
                scope.label(migration),
                mt_settings.lock_timeout(),
                _while(blockers.holders(self.connection, self._lock_waited_sql)),
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
                    scope.label(migration),
                    "the whole migration (atomic)",
                    exhausted,
                    "Each attempt was rolled back: nothing of the migration was applied.",
                    blockers.holders(self.connection, self._lock_waited_sql),
                )
            ) from exhausted.__cause__

    def _is_new(self, table: str | None) -> bool:
        return table is not None and table in self.migtools_new_tables

    def _backstop(self, migration: Migration, project_state: ProjectState) -> None:
        """Judge the migration with the rule engine (collect mode, same connection, a copy of
        the state) and refuse it on any error-level finding about the database."""
        from migtools.rules.engine import Engine, explain, large_tables

        engine = Engine(
            self.connection,
            large_tables=large_tables(self.connection),
            managed={migration.app_label},
        )
        new_tables = set(deploy.new_tables(self.connection))
        refusals = engine.judge(migration, project_state.clone(), new_tables).refusals
        if refusals:
            raise UnsafeMigrationError.of(
                scope.label(migration),
                explain(refusals),
                tuple(dict.fromkeys(f.rule_id for f in refusals)),
            )

    # -- schema operations ---------------------------------------------------------------

    def create_model(self, model: type[Model]) -> None:
        self.migtools_new_tables.add(model._meta.db_table)
        super().create_model(model)

    def delete_model(self, model: type[Model]) -> None:
        if self._stock:
            return self._stock_call("delete_model")(model)  # type: ignore[no-any-return]
        return super().delete_model(model)  # type: ignore[no-any-return]

    def add_field(self, model: type[Model], field: Field[Any, Any]) -> None:
        if self._stock:
            return self._stock_call("add_field")(model, field)  # type: ignore[no-any-return]
        return super().add_field(model, field)  # type: ignore[no-any-return]

    def remove_field(self, model: type[Model], field: Field[Any, Any]) -> None:
        if self._stock:
            return self._stock_call("remove_field")(model, field)  # type: ignore[no-any-return]
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
        # Lock-light ALTER COLUMNs are separate statements (some are no statement at all), so
        # they cannot be combined into one ALTER TABLE: off for this call only.
        features = self.connection.features
        own_flag = "supports_combined_alters" in vars(features)
        combined = features.supports_combined_alters
        features.supports_combined_alters = False
        try:
            return super().alter_field(model, old_field, new_field, strict)  # type: ignore[no-any-return]
        finally:
            if own_flag:
                features.supports_combined_alters = combined
            else:
                del features.supports_combined_alters

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
        return self._stock_call("_rename_field_sql")(  # type: ignore[no-any-return]
            table, old_field, new_field, new_type
        )

    def alter_db_table(self, model: type[Model], old_db_table: str, new_db_table: str) -> None:
        if self._is_new(old_db_table):
            self.migtools_new_tables.add(new_db_table)
        self._stock_call("alter_db_table")(model, old_db_table, new_db_table)

    def alter_db_tablespace(
        self, model: type[Model], old_db_tablespace: str, new_db_tablespace: str
    ) -> None:
        self._stock_call("alter_db_tablespace")(model, old_db_tablespace, new_db_tablespace)

    def add_constraint(self, model: type[Model], constraint: Any) -> None:
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
        self._apply_timeouts()
        condition = None
        light = False
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
        with self._no_statement_timeout(light):
            self._execute_with_retries(statement, params, condition)

    def _skip_applied(self, condition: Any) -> bool:
        """The upstream idempotency check (does what this statement makes already exist?),
        with the identifiers it splices into string literals escaped."""
        if condition is not None:
            condition = zd.Condition(
                _literal_identifiers(condition.sql),
                condition.exists,
                idempotent_mode_only=condition.idempotent_mode_only,
            )
        return bool(super()._skip_applied(condition))

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
        label = scope.label(self.migtools_migration)
        dropped: list[str] = []

        def attempt() -> None:
            dropped.extend(retry.drop_invalid_leftovers(self.connection, sql))
            if not self._skip_applied(condition):
                base_execute(statement, params)

        def say(progress: retry.Progress) -> None:
            logger.warning(
                "migtools: %s: lock_timeout (%s) hit%s; retrying the statement in %.1fs "
                "(retry %d of %d, %.1fs waited so far): %s",
                label,
                mt_settings.lock_timeout(),
                _while(blockers.holders(self.connection, sql)),
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
                    label,
                    f"statement {statement}",
                    exhausted,
                    _left_behind(dropped, stuck),
                    blockers.holders(self.connection, sql),
                )
            ) from exhausted.__cause__
        except Exception as exc:
            if not faults.is_server_gone(exc, self.connection):
                self._failure_left = self._clean_after_failure(sql)
            raise

    def _clean_after_failure(self, sql: str) -> str:
        """After a statement failed for another reason than a lock timeout (out of
        temp_file_limit, read-only, a statement timeout): drop the INVALID index a failed
        concurrent build left, or name it."""
        try:
            dropped = retry.drop_invalid_leftovers(self.connection, sql, log=False)
        except Exception:
            logger.debug("could not drop the INVALID leftovers", exc_info=True)
            build = retry.index_build(sql)
            try:
                stuck = retry.invalid_leftovers(self.connection, build) if build else []
            except Exception:
                stuck = []
            if stuck:
                return (
                    f"The failed index build left INVALID index(es) {', '.join(stuck)} (unused "
                    "by queries); the next migrate drops them before building again."
                )
            return ""
        if dropped:
            return (
                f"The INVALID index(es) the failed build left ({', '.join(dropped)}) were dropped."
            )
        return ""


# An identifier the upstream editor spliced, quoted, into a string literal of an idempotency
# check (``to_regclass('"it's tab"')``, ``parse_ident('"odd'idx"')``): a quoted name, or a
# schema-qualified one, between single quotes.
_SPLICED = re.compile(r"""'("(?:[^"]|"")*"(?:\."(?:[^"]|"")*")*)'""")


def _literal_identifiers(sql: str) -> str:
    """The check with each spliced identifier made a proper string literal (its single
    quotes doubled), so names such as ``it's tab`` or ``odd'idx`` are checked, not broken."""
    return _SPLICED.sub(lambda m: "'" + m.group(1).replace("'", "''") + "'", sql)


def _while(waited_for: str) -> str:
    """`` (lock on "t", held by pid N (…))`` for a retry's log line, or ""."""
    return f" ({waited_for.replace('waited for a lock on', 'lock on', 1)})" if waited_for else ""


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
