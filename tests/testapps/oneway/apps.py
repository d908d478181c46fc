from __future__ import annotations

from django.apps import AppConfig


class OnewayConfig(AppConfig):
    name = "tests.testapps.oneway"
    label = "oneway"
    default_auto_field = "django.db.models.BigAutoField"
