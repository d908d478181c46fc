from __future__ import annotations

from django.apps import AppConfig


class CellConfig(AppConfig):
    name = "tests.multidb.cell"
    label = "cell"
