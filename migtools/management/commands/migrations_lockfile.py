"""Write ``migrations_lockfile.txt``, or check it (``--check``: exit 1, one line per wrong app)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any, ClassVar

from django.core.management.base import BaseCommand

from migtools import project
from migtools.errors import CheckFailedError
from migtools.graph import disk as graph
from migtools.graph import lockfile
from migtools.management.base import MigtoolsCommandMixin, display_path


class Command(MigtoolsCommandMixin, BaseCommand):
    help = (
        "Write migrations_lockfile.txt: one line per managed app naming its latest migration. "
        "With --check, verify it instead (exit 1 when it is stale)."
    )
    requires_system_checks: ClassVar[list[str]] = []  # type: ignore[misc]

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="Exit 1, listing each wrong, missing or extra app, when the lockfile is stale.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = project.lockfile_path()
        disk = graph.load()
        self.warn_all(disk.warnings)
        if options["check"]:
            mismatches = lockfile.check(path, disk)
            if mismatches:
                for mismatch in mismatches:
                    self.stderr.write(mismatch.describe())
                raise CheckFailedError(lockfile.stale_message(display_path(path), len(mismatches)))
            if options["verbosity"] >= 1:
                self.stdout.write(f"{display_path(path)} is up to date.")
            return
        try:
            current = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            current = ""  # missing or unreadable: rewritten below
        if lockfile.has_conflict_markers(current):
            lockfile.parse(current, str(path))  # raises, with the hint
        found = lockfile.found_other_kind(path, disk)
        if lockfile.write(path, lockfile.expected(disk)):
            self.stdout.write(self.style.SUCCESS(f"Wrote {display_path(path)}"))
            if found is not None:
                self.stdout.write(lockfile.converted_message(found, display_path(path)))
        elif options["verbosity"] >= 1:
            self.stdout.write(f"{display_path(path)} is up to date.")
