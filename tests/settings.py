"""Settings for the migtools test suite: a real PostgreSQL (throwaway when DATABASE_URL is unset)."""

from __future__ import annotations

import dj_database_url

from tests.pgserver import ensure_database_url

SECRET_KEY = "migtools-tests"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "migtools",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "tests.testapps.alpha",
    "tests.testapps.beta",
    "tests.testapps.gamma",
    # Real migrations (incl. a seed and a backfill) for the migration-testing tests.
    "tests.testapps.ledger",
    "tests.testapps.tally",  # a RunBackfill migration under TestMigrations
    "tests.testapps.oneway",  # migrations that cannot all run backwards, under TestMigrations
]

DATABASES = {"default": dj_database_url.parse(ensure_database_url())}
# A second alias on the same server (only created when a test asks for it), for migration
# tests with `connection = "other"`.
DATABASES["other"] = {**DATABASES["default"], "NAME": "migtools_other"}

# alpha/beta/gamma carry no migrations of their own (ledger does, and is not managed); each test points MIGRATION_MODULES at a
# package it writes in tmp_path.
MIGTOOLS_APPS = ["alpha", "beta", "gamma"]
