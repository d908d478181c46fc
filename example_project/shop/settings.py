"""Settings for the migtools example project: a small shop on PostgreSQL.

The database comes from ``DATABASE_URL`` (e.g. ``postgres://user@127.0.0.1:5432/shop``).
``make demo`` starts a throwaway PostgreSQL server and sets it for you.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "example-project-not-secret"
DEBUG = True
ALLOWED_HOSTS: list[str] = []
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "shop.urls"

# Pinned, so that no Django upgrade ever changes the primary keys of new models behind our back.
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    # First: migtools overrides makemigrations (and friends); the first app listed wins.
    "migtools",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "catalog",
    "customers",
    "orders",
]

_database_url = os.environ.get("DATABASE_URL")
if not _database_url:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set. The example project runs on PostgreSQL: export "
        "DATABASE_URL=postgres://USER@HOST:PORT/DBNAME, or run `make demo`, which starts a "
        "throwaway PostgreSQL server and sets DATABASE_URL for you."
    )
_database = dj_database_url.parse(_database_url)
if _database["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        f"DATABASE_URL must point at PostgreSQL, got engine {_database['ENGINE']!r}."
    )
# migtools' PostgreSQL backend: Django's, plus the safety checks on apply (refusals with a
# recipe), lock-light DDL (CONCURRENTLY, NOT VALID + VALIDATE) and lock/statement timeouts.
# See docs/safety.md.
_database["ENGINE"] = "migtools.db.backends.postgresql"
DATABASES = {"default": _database}

# The lockfile lives beside manage.py (not at the root of the git checkout holding this
# project), so that a copy of example_project/ is a complete project on its own.
MIGTOOLS_LOCKFILE_PATH = BASE_DIR / "migrations_lockfile.txt"
