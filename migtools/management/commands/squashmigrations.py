"""Django's ``squashmigrations``, writing the squash in the migtools form and keeping the
lockfile true."""

from __future__ import annotations

from typing import Any

from django.core.management.commands.squashmigrations import Command as DjangoCommand

from migtools import project
from migtools.authoring import writer
from migtools.errors import UnknownAppError
from migtools.management.base import MigtoolsCommandMixin


class Command(MigtoolsCommandMixin, DjangoCommand):
    help = DjangoCommand.help + " Keeps migrations_lockfile.txt current (migtools)."

    def handle(self, **options: Any) -> None:
        from django.apps import apps

        if options["app_label"] not in apps.app_configs:
            raise UnknownAppError(options["app_label"])  # exit 2, as in every command
        managed = [c.label for c in project.managed_apps()]
        before = writer.snapshot(managed)
        super().handle(**options)
        written = writer.written_since(before, managed)
        for path in written:
            writer.convert_file(path)
        if written:
            self.refresh_lockfile()
