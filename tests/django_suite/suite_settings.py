"""Settings for Django's own ``tests/runtests.py`` (see ``run.py``): both aliases on one
PostgreSQL server, through the backend named by ``DJANGO_SUITE_ENGINE``."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

_url = urlsplit(os.environ["DATABASE_URL"])
_engine = os.environ.get("DJANGO_SUITE_ENGINE", "django.db.backends.postgresql")
_prefix = os.environ.get("DJANGO_SUITE_DBNAME", "djsuite")


def _alias(name: str) -> dict[str, object]:
    return {
        "ENGINE": _engine,
        "NAME": f"{_prefix}_{name}",
        "USER": _url.username or "postgres",
        "PASSWORD": _url.password or "",
        "HOST": _url.hostname or "127.0.0.1",
        "PORT": _url.port or 5432,
    }


DATABASES = {"default": _alias("default"), "other": _alias("other")}
SECRET_KEY = "django_tests_secret_key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False
TEST_RUNNER = "suite_runner.OutcomeRunner"
