"""``migtools``: the settings-free console script (``migtools lockfile [--check]``,
``migtools update-migration [MIGRATION] [APP] [--dry-run] [--allow-dirty]``).

Runs in a repository without Django settings or project code: the apps are the repository's
migration packages and the rest comes from ``[tool.migtools]`` in ``pyproject.toml``
(:mod:`migtools.graph.checkout`); migration files are read with ``ast``, never imported, so it
works while ``models.py`` holds conflict markers. ``lockfile`` does not even import Django.
Same lockfile, messages and exit codes as ``manage.py migrations_lockfile`` and ``manage.py
update_migration`` (which alone can look at the database: ``--update-applied``); errors are
one line (``error: ...``), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from migtools import __version__
from migtools.errors import FAILED, OK, CheckFailedError, DynamicMigrationError, MigtoolsError
from migtools.graph import checkout, lockfile

DYNAMIC_HINT = (
    "the settings-free CLI reads migration files without importing them: use literal "
    "dependencies, or run 'python manage.py migrations_lockfile'"
)


def _shown(path: Path) -> str:
    """``path`` relative to the current directory when below it (as the command prints it)."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def _lockfile(
    check: bool, verbosity: int, staged: bool = False, config_path: str | None = None
) -> int:
    config = checkout.read_config(Path.cwd(), config_path)
    try:
        graph = checkout.load(config, staged=staged)
    except DynamicMigrationError as exc:
        raise DynamicMigrationError(exc.path, exc.line, f"{exc.reason}; {DYNAMIC_HINT}") from None
    path = config.lockfile
    if check:
        mismatches = lockfile.check(path, graph)
        if mismatches:
            for mismatch in mismatches:
                print(mismatch.describe(), file=sys.stderr)
            raise CheckFailedError(lockfile.stale_message(_shown(path), len(mismatches)))
        if verbosity >= 1:
            print(f"{_shown(path)} is up to date.")
        return OK
    if path.exists():
        text = path.read_bytes().decode("utf-8", errors="replace")
        if lockfile.has_conflict_markers(text):
            lockfile.parse(text, str(path))  # raises, with the hint
    found = lockfile.found_other_kind(path, graph)
    if lockfile.write(path, lockfile.expected(graph)):
        print(f"Wrote {_shown(path)}")
        if found is not None:
            print(lockfile.converted_message(found, _shown(path)))
    elif verbosity >= 1:
        print(f"{_shown(path)} is up to date.")
    return OK


def _update_migration(args: argparse.Namespace) -> int:
    # imported here: ``migtools lockfile`` stays free of Django imports
    from migtools.gitrepo import GitRepo
    from migtools.renamer import inputs, workflow

    config = checkout.read_config(Path.cwd(), args.config)
    source = inputs.checkout_source(config)
    options = workflow.Options(
        migration=args.migration,
        app_label=args.app_label,
        dry_run=args.dry_run,
        allow_dirty=args.allow_dirty,
    )

    def report(message: workflow.Message) -> None:
        if message.kind == workflow.WARNING:
            print(message.text, file=sys.stderr)
        elif message.kind == workflow.DIFF:
            sys.stdout.write(message.text)
        else:
            print(message.text)

    try:
        workflow.resolve(GitRepo.find(config.lockfile), source, options, report)
    except DynamicMigrationError as exc:
        hint = DYNAMIC_HINT.replace("migrations_lockfile", "update_migration")
        raise DynamicMigrationError(exc.path, exc.line, f"{exc.reason}; {hint}") from None
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="migtools",
        description="migtools without Django settings (for pre-commit hooks and CI).",
    )
    top.add_argument("--version", action="version", version=f"migtools {__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lock = commands.add_parser(
        "lockfile",
        help="Write migrations_lockfile.txt, or check it with --check.",
        description=(
            "Write migrations_lockfile.txt: one line per app naming its latest migration. "
            "With --check, verify it instead (exit 1 when it is stale)."
        ),
    )
    lock.add_argument(
        "--check",
        action="store_true",
        help="Exit 1, listing each wrong, missing or extra app, when the lockfile is stale.",
    )
    lock.add_argument(
        "--staged",
        action="store_true",
        help="Only the files git tracks (what a commit holds): untracked migration files are "
        "left out. The pre-commit hook passes it.",
    )
    lock.add_argument(
        "-v",
        "--verbosity",
        type=int,
        choices=(0, 1, 2, 3),
        default=1,
        help="0 prints nothing when all is well.",
    )
    # pre-commit passes the changed file names; the whole graph is checked anyway.
    lock.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    update = commands.add_parser(
        "update-migration",
        help="Resolve migration conflicts after a merge or rebase (no settings needed).",
        description=(
            "Resolve migration conflicts after a merge or rebase: renumber your branch's "
            "migrations after the latest on main, rewrite every reference to them, fix the "
            "lockfile and stage it all. Reads no Django settings and imports no project code, "
            "so it works while models.py is conflicted. Does not look at any database: "
            "'manage.py update_migration --update-applied' rolls back applied migrations."
        ),
    )
    update.add_argument(
        "migration", nargs="?", help="The migration to move: full name, number or substring."
    )
    update.add_argument("app_label", nargs="?", help="The app of MIGRATION, when not unique.")
    update.add_argument(
        "--dry-run", action="store_true", help="Print the plan and a unified diff; change nothing."
    )
    update.add_argument(
        "--allow-dirty",
        action="store_true",
        help="Rewrite files holding uncommitted edits of your own; those edits stay unstaged.",
    )
    for sub in (lock, update):
        sub.add_argument(
            "--config",
            metavar="PATH",
            help="The pyproject.toml holding [tool.migtools] (or its directory), e.g. "
            "backend/pyproject.toml from the repository root; relative paths in it resolve "
            "against its directory. Default: the nearest one from the current directory up to "
            "the repository root.",
        )
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "update-migration":
            return _update_migration(args)
        return _lockfile(args.check, args.verbosity, args.staged, args.config)
    except MigtoolsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.returncode
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
