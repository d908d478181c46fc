from __future__ import annotations

from django.apps import AppConfig


class TallyConfig(AppConfig):
    name = "tests.testapps.tally"
    label = "tally"
    default_auto_field = "django.db.models.BigAutoField"
