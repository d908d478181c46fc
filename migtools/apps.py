from __future__ import annotations

from django.apps import AppConfig


class MigtoolsConfig(AppConfig):
    name = "migtools"
    verbose_name = "migtools"

    def ready(self) -> None:
        from migtools.graph import checks

        checks.register()
