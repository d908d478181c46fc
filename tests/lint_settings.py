"""Settings for mypy's Django plugin (``[tool.django-stubs]``): the test suite's apps, and a
database that is never connected to. ``tests.settings`` starts a throwaway PostgreSQL when
imported; type checking must not (``make lint`` runs where no database server is wanted)."""

from __future__ import annotations

SECRET_KEY = "migtools-lint"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "migtools",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "tests.testapps.alpha",
    "tests.testapps.beta",
    "tests.testapps.gamma",
    "tests.testapps.ledger",
]

# The plugin reads model metadata only; nothing opens a connection.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "migtools_lint_never_connected",
        "HOST": "127.0.0.1",
        "PORT": "1",
    }
}

MIGTOOLS_APPS = ["alpha", "beta", "gamma"]
