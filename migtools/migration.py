"""``CheckedMigration``: the base class of every migration migtools manages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.db import migrations

if TYPE_CHECKING:
    from django.db.migrations.state import ProjectState


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

    # The migtools schema editor learns here which migration runs (checked or not, pre- or
    # post-deployment) and wraps it in timeouts and lock-timeout retries. Any other editor
    # (another backend, a collecting editor) runs the migration as Django does.

    def apply(
        self, project_state: ProjectState, schema_editor: Any, collect_sql: bool = False
    ) -> ProjectState:
        run = getattr(schema_editor, "migtools_run", None)
        if run is None:
            return super().apply(project_state, schema_editor, collect_sql)
        return run(self, super().apply, project_state, collect_sql, False)  # type: ignore[no-any-return]

    def unapply(
        self, project_state: ProjectState, schema_editor: Any, collect_sql: bool = False
    ) -> ProjectState:
        run = getattr(schema_editor, "migtools_run", None)
        if run is None:
            return super().unapply(project_state, schema_editor, collect_sql)
        return run(self, super().unapply, project_state, collect_sql, True)  # type: ignore[no-any-return]
