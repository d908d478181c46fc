"""Write ``migrations_lockfile.txt``, or check it (``--check``: exit 1, one line per wrong app);
``--adopt`` records each managed app's leaf as the adoption baseline
(``migrations_baseline.txt``, ``migtools.graph.baseline``)."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any, ClassVar

from django.core.management.base import BaseCommand

from migtools import project
from migtools.errors import CheckFailedError, UsageError
from migtools.graph import baseline, lockfile
from migtools.graph import disk as graph
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
        parser.add_argument(
            "--adopt",
            action="store_true",
            help="Adopt migtools in an existing project (once; commit the file): record each "
            f"managed app's latest migration in {baseline.FILE_NAME} beside the lockfile. "
            "That history is never checked; every migration written after it is.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = project.lockfile_path()
        disk = graph.load()
        self.warn_all(disk.warnings)
        if options["check"] and options["adopt"]:
            raise UsageError("--adopt and --check cannot be combined.")
        if options["adopt"]:
            self._adopt(path, disk)
        if options["check"]:
            mismatches = lockfile.check(path, disk)
            wrong = self._baseline_problems(path, disk)
            if mismatches or wrong:
                for mismatch in mismatches:
                    self.stderr.write(mismatch.describe())
                for line in wrong:
                    self.stderr.write(line)
                if not mismatches:
                    raise CheckFailedError(
                        f"{display_path(baseline.path_for(path))} names migrations that do not "
                        f"exist ({len(wrong)} app(s)): rename the entry after a squash or rename."
                    )
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

    def _adopt(self, path: Path, disk: graph.DiskGraph) -> None:
        """Record every managed app's leaf as the baseline (apps already recorded keep their
        entry: adoption is once; an app added since gets its leaf)."""
        target = baseline.path_for(path)
        before = baseline.read(target)
        entries = {**lockfile.expected(disk), **before}
        if entries == before and target.exists():
            self.stdout.write(f"{display_path(target)} is up to date (migtools already adopted).")
            return
        lockfile.write_atomic(target, baseline.render(entries))
        added = len(entries) - len(before)
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {display_path(target)}: {added} app(s) adopted; their history so far is "
                "not checked, every migration written from now on is. Commit it."
            )
        )

    def _baseline_problems(self, path: Path, disk: graph.DiskGraph) -> list[str]:
        entries = baseline.read(baseline.path_for(path))
        names = {label: frozenset(app.files) for label, app in disk.apps.items()}
        return baseline.missing(entries, names)
