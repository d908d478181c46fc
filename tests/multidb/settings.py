"""Settings of the multi-database test project: two databases on one PostgreSQL server."""

from __future__ import annotations

import os

import dj_database_url

from tests.pgserver import ensure_database_url

SECRET_KEY = "migtools-multidb"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "migtools",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "tests.multidb.cell",
    "tests.multidb.control",
]

_server = dj_database_url.parse(ensure_database_url())
_server["ENGINE"] = "migtools.db.backends.postgresql"
_prefix = os.environ.get("MULTIDB_PREFIX", "mt_multidb")
DATABASES = {
    "default": {**_server, "NAME": f"{_prefix}_default"},
    "control": {**_server, "NAME": f"{_prefix}_control"},
}
DATABASE_ROUTERS = ["tests.multidb.router.SiloRouter"]

MIGTOOLS_APPS = ["cell", "control"]
MIGTOOLS_MIGRATION_TEST_DIRS = [os.path.dirname(__file__)]
MIGTOOLS_LOCK_RETRY_DELAY = "100ms"
# Table sizes per alias (tests/test_multidb.py records them in a temp file).
if os.environ.get("MULTIDB_LARGE_TABLE_ROWS"):
    MIGTOOLS_LARGE_TABLE_ROWS = int(os.environ["MULTIDB_LARGE_TABLE_ROWS"])
if os.environ.get("MULTIDB_TABLE_SIZES"):
    MIGTOOLS_TABLE_SIZES = os.environ["MULTIDB_TABLE_SIZES"]
SILENCED_SYSTEM_CHECKS = ["migtools.W001"]

if os.environ.get("MULTIDB_RUNNER") == "tasks":  # backfills through Django Tasks, run at once
    INSTALLED_APPS.append("django_tasks")
    TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    MIGTOOLS_BACKFILL_RUNNER = "tasks"
