"""The silo router of the multi-database test project (see ``tests/multidb/__init__.py``)."""

from __future__ import annotations

import os
from typing import Any

from django.apps import apps

SILOS = ("default", "control")
CONTROL_APPS = frozenset({"control"})
# Models of other apps that live in the control silo (routed by model, not by app).
CONTROL_MODELS = frozenset({("cell", "region")})
# Tables of dropped models and the silo that held them (read by the DELETE phase).
# MULTIDB_FORGET_HISTORY=1 plays the mistake the Sentry guide warns about: the entry missing.
historical_silo_assignments = (
    {} if os.environ.get("MULTIDB_FORGET_HISTORY") else {"control_oldaudit": "control"}
)


def silo_of(app_label: str, model_name: str | None = None) -> str | None:
    """The silo of a model (None: a dropped model with no historical assignment)."""
    if model_name is not None:
        try:
            apps.get_model(app_label, model_name)
        except LookupError:  # gone from the code: only the historical assignment knows
            return historical_silo_assignments.get(f"{app_label}_{model_name}")
    if app_label in CONTROL_APPS or (app_label, model_name) in CONTROL_MODELS:
        return "control"
    return "default"


class SiloRouter:
    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return silo_of(model._meta.app_label, model._meta.model_name)

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return silo_of(model._meta.app_label, model._meta.model_name)

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        return None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        if db not in SILOS:
            return None
        silo = hints.get("silo") or silo_of(app_label, model_name)
        return None if silo is None else db == silo

    def historical_db_for(self, table: str) -> str | None:
        return historical_silo_assignments.get(table)
