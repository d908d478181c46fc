"""``CheckedMigration``: the base class of every migration migtools manages."""

from __future__ import annotations

from typing import ClassVar

from django.db import migrations


class CheckedMigration(migrations.Migration):
    """A migration that migtools' safety checks apply to.

    ``is_post_deployment`` must be stated in every subclass: True for migrations that are
    too slow or too lock-heavy to run before a deploy (large backfills, index builds on big
    tables); they are then applied after the new code is live (``migrate --pre-deploy``
    defers them). ``checked = False`` is the visible opt-out for one migration.
    ``ignore_rules`` maps a rule id to the reason it does not apply here.
    """

    is_post_deployment: ClassVar[bool | None] = None
    checked: ClassVar[bool] = True
    ignore_rules: ClassVar[dict[str, str]] = {}

    @classmethod
    def states_post_deployment(cls) -> bool:
        """True when the subclass itself (or a user base class) sets ``is_post_deployment``."""
        for klass in cls.__mro__:
            if klass is CheckedMigration:
                return False
            if "is_post_deployment" in vars(klass):
                return True
        return False
