"""One exception tree for migtools; commands map it to exit codes in one place."""

from __future__ import annotations


class MigtoolsError(Exception):
    """Base of every error migtools raises on bad input or a refused operation.

    ``returncode`` follows Django's convention: 1 for a failed check or a refusal,
    2 for bad usage (unknown app label, bad arguments).
    """

    returncode = 1


class UsageError(MigtoolsError):
    returncode = 2


class UnknownAppError(UsageError):
    def __init__(self, label: str) -> None:
        super().__init__(f"No installed app with label '{label}'.")
        self.label = label


class GraphError(MigtoolsError):
    """The migrations on disk do not form a valid graph (missing node, cycle, ...)."""


class DynamicMigrationError(GraphError):
    """A migration file cannot be read statically (non-literal dependencies, ...)."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class MigrationSyntaxError(GraphError):
    def __init__(self, path: str, line: int, msg: str) -> None:
        super().__init__(f"{path}:{line}: syntax error: {msg}")
        self.path = path
        self.line = line


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


class DatabaseServerError(MigtoolsError):
    """No PostgreSQL server could be started or reached."""


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


class RuleConfigError(UsageError):
    """``MIGTOOLS_RULES`` names an unknown rule or level."""


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


class LockTimeoutError(MigtoolsError):
    """A migration statement could not get its lock within lock_timeout, retries included."""


class UnroutedTableError(MigtoolsError):
    """The DELETE phase of a two-phase removal cannot tell which database holds the table."""


class PendingDeletionError(MigtoolsError):
    """A DELETE-phase operation without its earlier MOVE_TO_PENDING (or a bad MOVE_TO_PENDING)."""


class UnsafeModelChangeError(MigtoolsError):
    """makemigrations would have to write a migration that is unsafe to apply, and the safe
    form is not state-equivalent: the model must change first (the message says how)."""


class MigrationTestError(UsageError):
    """A migration test is set up wrongly (missing or unknown app, migration or alias)."""


class SnapshotError(MigtoolsError):
    """A migration-test snapshot could not be made or used (wrong backend, busy database, …)."""


class GitRefError(UsageError):
    """A git ref given on the command line (``--since``) does not exist."""


class JournalError(RenumberError):
    """An interrupted update_migration run cannot be completed or undone automatically."""


class DatabaseUnavailableError(MigtoolsError):
    """A command that needs the database (``update_migration --update-applied``) cannot reach
    it, or none is configured."""
