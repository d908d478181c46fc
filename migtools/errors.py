"""One exception tree for migtools; commands map it to exit codes in one place
(``migtools.management.base.MigtoolsCommandMixin.execute``).

Exit codes, the same in every command (``EXIT_CODES`` is the table the README shows):

====  ==========================================================================================
0     ok (also: nothing to do)
1     findings at error level, a failed check (``--check``), a refusal, an unknown migration
      name, an operational failure (database down or refusing the login, lock timeout, a git
      command that failed)
2     bad usage: bad arguments, an unknown app label or an app without migrations named on the
      command line, an unknown database alias, a git ref that does not exist, a stale lockfile
      under ``makemigrations --check``
====  ==========================================================================================

Settings are validated by system checks (``migtools.E1xx`` errors) before any command that
runs them (``migrate``, ``makemigrations``, ``verify_migrations``...); Django exits 1 then.
A setting read at run time exits 1 the same way (``SettingsError``, ``RuleConfigError``).
Commands never write an exit code themselves: they raise one of the classes below and
``migtools.management.base`` maps it.
"""

from __future__ import annotations

OK = 0
FAILED = 1
USAGE = 2

#: condition -> exit code, in every command.
EXIT_CODES: dict[str, int] = {
    "ok, or nothing to do": OK,
    "error-level findings (verify_migrations, sqlmigrate --check)": FAILED,
    "a failed check (migrations_lockfile --check, makemigrations --check with changes)": FAILED,
    "a refusal (an unsafe migration, update_migration refusing)": FAILED,
    "an unknown migration name": FAILED,
    "a setting refused by a system check (migtools.E1xx)": FAILED,
    "database down, refusing the login, or stopped mid-run": FAILED,
    "a lock timeout after every retry": FAILED,
    "a git command that failed": FAILED,
    "a migration file Django's loader refuses (syntax error, missing dependency, cycle, ...)": FAILED,
    "bad arguments": USAGE,
    "an unknown app label": USAGE,
    "an app without migrations named on the command line": USAGE,
    "an unknown database alias (--database)": USAGE,
    "a git ref that does not exist (--since)": USAGE,
    "a stale lockfile under makemigrations --check": USAGE,
}


class MigtoolsError(Exception):
    """Base of every error migtools raises on bad input or a refused operation.

    ``returncode`` is the exit code of the table above: 1 for a failed check, a refusal or
    an operational failure, 2 for bad usage (see :class:`UsageError`).
    """

    returncode = FAILED


class UsageError(MigtoolsError):
    """Bad usage: the command line names something that does not exist (exit 2)."""

    returncode = USAGE


class UnknownAppError(UsageError):
    def __init__(self, label: str) -> None:
        super().__init__(f"No installed app with label '{label}'.")
        self.label = label


class NoMigrationsError(UsageError):
    """The command line names an app that has no migrations (exit 2, in every command)."""

    def __init__(self, label: str) -> None:
        super().__init__(f"App '{label}' does not have migrations.")
        self.label = label


class UnknownDatabaseError(UsageError):
    """``--database`` names an alias that is not in ``DATABASES``."""

    def __init__(
        self, alias: str, known: list[str], way_out: str = "give one of them with --database"
    ) -> None:
        choices = ", ".join(repr(a) for a in known) or "none"
        super().__init__(
            f"Unknown database alias {alias!r} (DATABASES defines: {choices}); {way_out}."
        )
        self.alias = alias


class SettingsError(MigtoolsError):
    """A ``MIGTOOLS_*`` setting migtools would misread (the system check reports it as the
    Error ``check_id`` with ``hint``; read at run time it is this exception, exit 1)."""

    def __init__(
        self,
        setting: str,
        value: object,
        problem: str,
        hint: str,
        check_id: str,
    ) -> None:
        super().__init__(f"{setting} = {value!r}: {problem}. {hint}")
        self.setting = setting
        self.value = value
        self.problem = problem
        self.hint = hint
        self.check_id = check_id


class UnknownMigrationError(MigtoolsError):
    """A migration name that matches no migration of the app (exit 1, as Django's)."""


class DatabaseUnavailableError(MigtoolsError):
    """The database could not be reached, refused the login, or went away mid-run (or a
    command that needs one, such as ``update_migration --update-applied``, has none)."""


class GraphError(MigtoolsError):
    """The migrations on disk do not form a valid graph (missing node, cycle, ...)."""


class MigrationFileError(GraphError):
    """A migration file Django's loader refuses (a syntax error, a missing dependency, a cycle,
    no ``Migration`` class, an error on import, an inconsistent history...): one line,
    ``path:line: reason`` (exit 1)."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class DynamicMigrationError(MigrationFileError):
    """A migration file cannot be read statically (non-literal dependencies, ...)."""


class MigrationSyntaxError(MigrationFileError):
    def __init__(self, path: str, line: int, msg: str) -> None:
        super().__init__(path, line, f"syntax error: {msg}")


class ConflictError(MigtoolsError):
    """An app has several leaf migrations (two branches added migrations)."""

    def __init__(self, conflicts: dict[str, list[str]]) -> None:
        detail = "; ".join(
            f"{', '.join(names)} in {app}" for app, names in sorted(conflicts.items())
        )
        super().__init__(
            f"Conflicting migrations: several leaf nodes in the migration graph ({detail}).\n"
            "Run 'python manage.py update_migration' to renumber your branch's migrations "
            "after main's."
        )
        self.conflicts = conflicts


class LockfileError(MigtoolsError):
    """The lockfile is missing or cannot be parsed."""


class LockfileConflictError(LockfileError):
    """The lockfile holds git conflict markers."""


class StaleLockfileError(UsageError):
    """``makemigrations --check``: the lockfile is missing, unreadable, conflicted or does not
    match the migrations on disk (exit 2)."""


class CheckFailedError(MigtoolsError):
    """A ``--check`` found something to fix (e.g. a stale lockfile): exit 1."""


class FindingsError(MigtoolsError):
    """Error-level findings were reported (``verify_migrations``, ``sqlmigrate --check``,
    ``migrate --check``): exit 1."""


class GitRepoError(MigtoolsError):
    """A git operation failed or the repository is not in a usable state."""


class NotAGitRepoError(GitRepoError):
    def __init__(self, path: str) -> None:
        super().__init__(
            f"{path} is not inside a git repository: update_migration needs git to tell your "
            "branch's migrations from main's."
        )
        self.path = path


class RenumberError(MigtoolsError):
    """update_migration refuses: bad input or a state it cannot resolve; nothing was changed."""


class AppliedMigrationsError(RenumberError):
    """Migrations to be renamed are recorded as applied in the database."""


class RenumberWriteError(RenumberError):
    """Writing the renames failed midway; every file was restored."""


class RuleConfigError(MigtoolsError):
    """``MIGTOOLS_RULES`` names an unknown rule or level (exit 1, as every bad setting)."""


class UnsafeMigrationError(MigtoolsError):
    """Applying a migration was refused: what is dangerous, why, and the safe recipe."""

    def __init__(
        self, rule: str, migration: str, message: str, why: str = "", recipe: str = ""
    ) -> None:
        parts = [f"{migration}: {message} [{rule}]"]
        if why:
            parts.append(f"Why: {why}")
        if recipe:
            parts.append(f"Safe recipe:\n{recipe}")
        super().__init__("\n".join(parts))
        self.rule = rule
        self.migration = migration
        self.message = message
        self.why = why
        self.recipe = recipe

    @classmethod
    def of(cls, what: str, explanation: str, rules: tuple[str, ...] = ()) -> UnsafeMigrationError:
        """A refusal listing several findings (``explanation``: each with file:line, why and
        the recipe), for ``what`` (a migration or a plan)."""
        error = cls.__new__(cls)
        MigtoolsError.__init__(error, f"{what}: refused by migtools' safety checks:\n{explanation}")
        error.rule = ", ".join(rules)
        error.migration = what
        error.message = explanation
        error.why = error.recipe = ""
        return error


class LockTimeoutError(MigtoolsError):
    """A migration statement could not get its lock within lock_timeout, retries included."""


class UnroutedTableError(MigtoolsError):
    """The DELETE phase of a two-phase removal cannot tell which database holds the table."""


class PendingDeletionError(MigtoolsError):
    """A DELETE-phase operation without its earlier MOVE_TO_PENDING (or a bad MOVE_TO_PENDING)."""


class IrreversibleMigrationError(MigtoolsError):
    """``migrate`` would unapply a migration holding an operation that cannot be reversed:
    refused before anything is unapplied (exit 1), naming the migration and the way out."""


class UnsafeModelChangeError(MigtoolsError):
    """makemigrations would have to write a migration that is unsafe to apply, and the safe
    form is not state-equivalent: the model must change first (the message says how)."""


class MigrationTestError(UsageError):
    """A migration test is set up wrongly (missing or unknown app, migration or alias)."""


class SnapshotError(MigtoolsError):
    """A migration-test snapshot could not be made or used (wrong backend, busy database, …)."""


class StatementTimeoutError(MigtoolsError):
    """A statement of a migration was cancelled (SQLSTATE 57014), by statement_timeout or by
    another session; the message names the migration, the setting and the ways out."""


class DatabaseRefusedError(MigtoolsError):
    """The database refused a migration statement for an operational reason, not a bug in
    it: read-only (SQLSTATE class 25, e.g. a standby or ``default_transaction_read_only``) or
    out of a resource (class 53: ``temp_file_limit``, disk, memory, connections)."""


class ServerGoneError(MigtoolsError):
    """The database server went away while migrate ran (stopped, or the session terminated);
    the message names the alias, host and port and the state the migration was left in."""


class BackfillError(MigtoolsError):
    """A ``RunBackfill`` cannot run (atomic migration, unsupported key) or a batch failed;
    ``EnsureBackfilled`` found a backfill not done; ``backfills --run`` names no backfill."""


class GitRefError(UsageError):
    """A git ref given on the command line (``--since``) does not exist."""


class JournalError(RenumberError):
    """An interrupted update_migration run cannot be completed or undone automatically."""


class SquashError(MigtoolsError):
    """squashmigrations or prune_squashed refusing (exit 1); nothing was changed."""
