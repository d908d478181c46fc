"""What every migtools command shares: migtools errors become ``CommandError`` with their
exit code, in one place."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from migtools.errors import MigtoolsError


class MigtoolsCommandMixin(BaseCommand):
    def execute(self, *args: Any, **options: Any) -> str | None:
        try:
            return super().execute(*args, **options)
        except MigtoolsError as exc:
            raise CommandError(str(exc), returncode=exc.returncode) from exc

    def warn_all(self, warnings: list[str]) -> None:
        for warning in warnings:
            self.stderr.write(self.style.WARNING(f"migtools: {warning}"))

    def refresh_lockfile(self) -> None:
        """Rewrite the lockfile from the graph on disk; a conflict leaves it as it is."""
        from migtools import graph, lockfile
        from migtools import settings as mt_settings
        from migtools.errors import ConflictError

        disk = graph.load()
        self.warn_all(disk.warnings)
        try:
            entries = lockfile.expected(disk)
        except ConflictError as exc:
            self.stderr.write(self.style.WARNING(f"Lockfile not updated. {exc}"))
            return
        path = mt_settings.lockfile_path()
        if lockfile.write(path, entries):
            self.stdout.write(f"Updated {path}")
