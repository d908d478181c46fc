from __future__ import annotations

from django.apps import AppConfig


class MigtoolsConfig(AppConfig):
    name = "migtools"
    verbose_name = "migtools"

    def ready(self) -> None:
        from migtools import checks as settings_checks
        from migtools.graph import checks

        settings_checks.register()
        checks.register()
