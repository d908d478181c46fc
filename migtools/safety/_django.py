"""Private Django API the safety capability needs, fenced here (ruff's SLF001 is off for this
module only; see ``pyproject.toml``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.state import ProjectState


def applied_state(executor: MigrationExecutor) -> ProjectState:
    """The project state with every applied migration in it, as Django's ``migrate`` builds
    it before a forwards plan (``MigrationExecutor._create_project_state``)."""
    state: ProjectState = executor._create_project_state(with_applied_migrations=True)  # type: ignore[attr-defined]
    return state
