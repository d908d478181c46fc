"""Database faults during apply: what a PostgreSQL error means (read from its SQLSTATE, never
from its message text) and the migtools error it becomes.

- ``55P03`` lock_not_available: what ``lock_timeout`` raises (retried, see ``retry``);
- ``57014`` query_canceled: ``statement_timeout`` (or ``pg_cancel_backend``) cancelled a
  statement -> :class:`~migtools.errors.StatementTimeoutError`;
- ``57P01``/``57P02``/``57P03`` and class ``08``: the server went away (``pg_ctl stop``,
  ``pg_terminate_backend``, a crash, a lost socket) -> :class:`~migtools.errors.ServerGoneError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.db.utils import InterfaceError, OperationalError

from migtools.dberrors import sqlstate, where
from migtools.errors import MigtoolsError, ServerGoneError, StatementTimeoutError

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"
# admin_shutdown (pg_ctl stop -m fast/smart, pg_terminate_backend), crash_shutdown,
# cannot_connect_now (the server is starting or stopping).
SERVER_GONE = frozenset({"57P01", "57P02", "57P03"})
CONNECTION_EXCEPTION_CLASS = "08"


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
) -> Iterator[None]:
    """Turn a statement timeout or a lost server while migration ``label`` runs into a
    one-line migtools error saying what state the migration is in."""
    try:
        yield
    except MigtoolsError:
        raise
    except Exception as exc:
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
                    "drops before building it again), and Django records a migration only after it finishes, so it is not recorded "
                    "as applied; migtools' lock-light steps skip what exists when re-run."
                )
            raise server_gone(connection, exc, state) from exc
        if is_statement_timeout(exc):
            raise statement_timeout(label, statement_timeout_, post_deployment) from exc
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
