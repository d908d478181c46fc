"""``manage.py test`` with test databases cloned from content-keyed templates.

Set ``TEST_RUNNER = "migtools.testing.runner.TemplateTestRunner"``, or mix
:class:`TemplateDatabasesMixin` into a runner of your own (before the runner class). Both
install :mod:`migtools.testing.creation` on every database alias before Django creates the
test databases; ``--keepdb`` then keeps a test database only while its migrations are
unchanged, and ``--parallel`` clones the workers' databases from the test database as usual.
"""

from __future__ import annotations

from typing import Any

from django.test.runner import DiscoverRunner

from migtools.testing.creation import install_all


class TemplateDatabasesMixin:
    def setup_databases(self, **kwargs: Any) -> Any:
        install_all()
        return super().setup_databases(**kwargs)  # type: ignore[misc]


class TemplateTestRunner(TemplateDatabasesMixin, DiscoverRunner):
    """Django's ``DiscoverRunner``, its test databases cloned from templates."""
