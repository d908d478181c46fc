"""Database faults during apply: what a PostgreSQL error means (read from its SQLSTATE, never
from its message text) and the migtools error it becomes.

- ``55P03`` lock_not_available: what ``lock_timeout`` raises (retried, see ``retry``);
- ``57014`` query_canceled: ``statement_timeout`` (or ``pg_cancel_backend``) cancelled a
  statement -> :class:`~migtools.errors.StatementTimeoutError`;
- ``57P01``/``57P02``/``57P03`` and class ``08``: the server went away (``pg_ctl stop``,
  ``pg_terminate_backend``, a crash, a lost socket) -> :class:`~migtools.errors.ServerGoneError`;
- class ``25`` (invalid transaction state: ``25006`` read-only, a standby or
  ``default_transaction_read_only``) and class ``53`` (insufficient resources:
  ``temp_file_limit``, disk full, out of memory, too many connections) ->
  :class:`~migtools.errors.DatabaseRefusedError`.

In a migration with ``atomic = False`` each operation commits as it finishes:
:class:`Operations` follows which ones did, so the message says what a re-run repeats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.db.migrations.operations import RunPython, RunSQL
from django.db.utils import InterfaceError, OperationalError

from migtools.dberrors import reason, sqlstate, where
from migtools.errors import (
    DatabaseRefusedError,
    LockTimeoutError,
    MigtoolsError,
    ServerGoneError,
    StatementTimeoutError,
)

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration

LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"
# admin_shutdown (pg_ctl stop -m fast/smart, pg_terminate_backend), crash_shutdown,
# cannot_connect_now (the server is starting or stopping).
SERVER_GONE = frozenset({"57P01", "57P02", "57P03"})
CONNECTION_EXCEPTION_CLASS = "08"
INVALID_TRANSACTION_STATE_CLASS = "25"
READ_ONLY = "25006"
INSUFFICIENT_RESOURCES_CLASS = "53"
_RESOURCES = {
    "53100": "the server ran out of disk space",
    "53200": "the server ran out of memory",
    "53300": "the server has too many connections",
    "53400": "the statement went over a configured limit (temp_file_limit, "
    "max_locks_per_transaction, ...)",
}


def is_lock_timeout(exc: BaseException) -> bool:
    """True for PostgreSQL's lock_not_available (what lock_timeout raises)."""
    return sqlstate(exc) == LOCK_NOT_AVAILABLE


def is_statement_timeout(exc: BaseException) -> bool:
    return sqlstate(exc) == QUERY_CANCELED


def is_server_gone(exc: BaseException, connection: BaseDatabaseWrapper) -> bool:
    """True when the session ended under us: a shutdown/termination SQLSTATE, a connection
    exception, or a driver error without SQLSTATE on a connection that is now closed."""
    code = sqlstate(exc)
    if code is not None:
        return code in SERVER_GONE or code.startswith(CONNECTION_EXCEPTION_CLASS)
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    raw = connection.connection
    return raw is None or bool(getattr(raw, "closed", False)) or bool(getattr(raw, "broken", False))


def is_refused(exc: BaseException) -> bool:
    """Read-only (class 25) or out of a resource (class 53)."""
    code = sqlstate(exc) or ""
    return code[:2] in (INVALID_TRANSACTION_STATE_CLASS, INSUFFICIENT_RESOURCES_CLASS)


def refused(label: str, exc: BaseException, state: str) -> DatabaseRefusedError:
    code = sqlstate(exc) or ""
    if code == READ_ONLY:
        why = (
            "the database is read-only (a standby, or default_transaction_read_only is on); "
            "run migrate against the primary, writable database"
        )
    elif code.startswith(INSUFFICIENT_RESOURCES_CLASS):
        what = _RESOURCES.get(code, "the server ran out of a resource")
        why = f"{what}; raise the limit or free the resource, then run migrate again"
    else:
        why = "the transaction was in a state that does not allow the statement"
    return DatabaseRefusedError(
        f"{label}: the database refused a statement: {reason(exc)} (SQLSTATE {code}): {why}. "
        f"{state}"
    )


class Operations:
    """Which operations of a migration run with ``atomic = False`` finished (each commits
    as it goes), to say what a failure left and what a re-run repeats."""

    def __init__(self, migration: Migration, backwards: bool) -> None:
        self.operations = list(migration.operations)
        self.backwards = backwards
        self.done: list[int] = []
        self.current: int | None = None

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Follow each operation's ``database_forwards``/``database_backwards`` for the block
        (an attribute on the operation object, removed after it)."""
        method = "database_backwards" if self.backwards else "database_forwards"
        patched = []
        for index, operation in enumerate(self.operations):
            if method in vars(operation):
                continue
            setattr(operation, method, self._follow(index, getattr(operation, method)))
            patched.append(operation)
        try:
            yield
        finally:
            for operation in patched:
                delattr(operation, method)

    def _follow(self, index: int, run: Callable[..., Any]) -> Callable[..., Any]:
        def follow(*args: Any, **kwargs: Any) -> Any:
            self.current = index
            result = run(*args, **kwargs)
            self.done.append(index)
            self.current = None
            return result

        return follow

    def _name(self, index: int) -> str:
        return f"{index + 1} {type(self.operations[index]).__name__}"

    def describe(self) -> str:
        """``Operations 1-2 of 4 committed (1 AddField, 2 RunPython); operation 3 (AddIndex)
        failed; a re-run of migrate runs them again: …``"""
        total = len(self.operations)
        verb = "reversed" if self.backwards else "committed"
        failed = (
            f"operation {self.current + 1} ({type(self.operations[self.current]).__name__}) "
            "did not complete"
            if self.current is not None
            else "the failure came after its last operation"
        )
        if not self.done:
            return f"None of its {total} operations {verb} ({failed})."
        done = sorted(self.done)
        span = (
            f"operation {done[0] + 1}"
            if len(done) == 1
            else f"operations {done[0] + 1}-{done[-1] + 1}"
            if done == list(range(done[0], done[-1] + 1))
            else "operations " + ", ".join(str(i + 1) for i in done)
        )
        names = ", ".join(self._name(i) for i in done)
        head = f"{span[0].upper()}{span[1:]} of {total} {verb} ({names}); {failed}"
        if self.backwards:
            return (
                f"{head}; a re-run of migrate reverses the migration from its last operation again."
            )
        again = [i for i in done if isinstance(self.operations[i], (RunPython, RunSQL))]
        skip = [i for i in done if i not in again]
        parts = []
        if again:
            which = ", ".join(self._name(i) for i in again)
            parts.append(
                f"{which} run a second time (make them idempotent, or move them to a "
                "migration of their own)"
            )
        if skip:
            which = ", ".join(self._name(i) for i in skip)
            parts.append(f"{which} find what they made and skip it")
        return (
            f"{head}; a re-run of migrate runs the migration from its first operation again, "
            f"so it runs them again: {'; '.join(parts)}."
        )


def server_gone(connection: BaseDatabaseWrapper, exc: BaseException, state: str) -> ServerGoneError:
    code = sqlstate(exc)
    reason = f"SQLSTATE {code}" if code else "the connection was closed"
    return ServerGoneError(
        f"Lost the connection to {where(connection)} mid-run ({reason}: the server was stopped, "
        f"or the session was terminated). {state} Run migrate again once the server is back."
    )


def statement_timeout(
    label: str, timeout: str | None, post_deployment: bool
) -> StatementTimeoutError:
    if timeout is None:
        # No statement_timeout of ours was in force: another session cancelled it.
        return StatementTimeoutError(
            f"{label}: a statement was cancelled (SQLSTATE 57014, query_canceled) while no "
            "migtools statement_timeout applied, so another session cancelled it "
            "(pg_cancel_backend). The migration is not recorded as applied; run migrate again."
        )
    where_ = "post-deployment" if post_deployment else "pre-deploy"
    return StatementTimeoutError(
        f"{label}: a statement ran longer than statement_timeout ({timeout}, "
        f"MIGTOOLS_STATEMENT_TIMEOUT for {where_} migrations) and was cancelled "
        "(SQLSTATE 57014). The migration is not recorded as applied. A data migration that "
        "slow must not run before the deploy: set is_post_deployment = True on it (no "
        "statement_timeout), or move the data change to migtools.operations.RunBackfill "
        "(batched), or raise MIGTOOLS_STATEMENT_TIMEOUT."
    )


@contextmanager
def translated(
    connection: BaseDatabaseWrapper,
    label: str,
    *,
    atomic: bool,
    statement_timeout_: str | None,
    post_deployment: bool,
    operations: Operations | None = None,
    left: Callable[[], str] = lambda: "",
) -> Iterator[None]:
    """Turn a statement timeout, a lost server, a read-only database or a lack of resources
    while migration ``label`` runs into a one-line migtools error saying what state the
    migration is in: for ``atomic = False``, which operations committed (``operations``)
    and what the failed statement left (``left``, e.g. an INVALID index dropped)."""
    try:
        yield
    except LockTimeoutError as exc:
        if operations is None:
            raise
        raise LockTimeoutError(f"{exc} {operations.describe()}") from exc.__cause__
    except MigtoolsError:
        raise
    except Exception as exc:
        committed = f" {operations.describe()}" if operations is not None else ""
        residue = left()
        residue = f" {residue}" if residue else ""
        if is_server_gone(exc, connection):
            if atomic:
                state = (
                    f"{label} was running in a transaction that never committed: none of it "
                    "was applied, and Django records a migration only after it finishes, so "
                    "it is not recorded as applied."
                )
            else:
                state = (
                    f"{label} was running (atomic = False): the statements that finished "
                    "before the loss stay applied, the one in progress did not commit (an "
                    "index build cut short leaves an INVALID index, which the next migrate "
                    "drops before building it again), and Django records a migration only "
                    f"after it finishes, so it is not recorded as applied.{committed}"
                )
            raise server_gone(connection, exc, state) from exc
        if atomic:
            state = (
                "The migration's transaction was rolled back: none of it was applied, and it "
                "is not recorded as applied."
            )
        else:
            state = f"The migration (atomic = False) is not recorded as applied.{committed}"
        if is_statement_timeout(exc):
            error = statement_timeout(label, statement_timeout_, post_deployment)
            if not atomic:
                error = StatementTimeoutError(f"{error}{committed}{residue}")
            raise error from exc
        if is_refused(exc):
            raise refused(label, exc, f"{state}{residue}") from exc
        raise


@contextmanager
def translated_run(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """The same for a lost server anywhere else in a ``migrate`` run (between migrations,
    while Django records one, in a migration that is not checked)."""
    try:
        yield
    except MigtoolsError:
        raise
    except Exception as exc:
        first = _first_server_gone(exc)
        if first is not None:
            # Django's clean-up after the loss (a rollback, re-enabling autocommit on a
            # reconnect) failed too, and replaced the error that said what happened.
            raise first from first.__cause__
        if is_refused(exc):
            raise refused(
                "migrate",
                exc,
                "Django records a migration only after it finishes: the migrations reported OK "
                "are recorded as applied, the one in progress (if any) is not.",
            ) from exc
        if not is_server_gone(exc, connection):
            raise
        raise server_gone(
            connection,
            exc,
            "Django records a migration only after it finishes: the migrations reported OK "
            "are recorded as applied, the one in progress (if any) is not; check with "
            "`manage.py showmigrations` once the server is back.",
        ) from exc


def _first_server_gone(exc: BaseException) -> ServerGoneError | None:
    seen: set[int] = set()
    current: BaseException | None = exc.__context__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ServerGoneError):
            return current
        current = current.__context__
    return None
