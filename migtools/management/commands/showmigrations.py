"""Django's ``showmigrations``, with migtools' error mapping: a database that is down or
refuses the login is one line naming the alias, host and port (exit 1), an unknown
``--database`` alias or app label exits 2."""

from __future__ import annotations

from typing import Any

from django.core.management.commands.showmigrations import Command as DjangoCommand

from migtools.errors import UnknownAppError
from migtools.management.base import MigtoolsCommandMixin


class Command(MigtoolsCommandMixin, DjangoCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        from django.apps import apps

        for label in options.get("app_label") or ():
            if label not in apps.app_configs:
                raise UnknownAppError(label)
        super().handle(*args, **options)
