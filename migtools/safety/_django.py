"""Private Django API the safety capability needs, fenced here (ruff's SLF001 is off for this
module only; see ``pyproject.toml``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.state import ProjectState


def applied_state(executor: MigrationExecutor) -> ProjectState:
    """The project state with every applied migration in it, as Django's ``migrate`` builds
    it before a forwards plan (``MigrationExecutor._create_project_state``)."""
    state: ProjectState = executor._create_project_state(with_applied_migrations=True)  # type: ignore[attr-defined]
    return state


@contextmanager
def executors_recorded() -> Iterator[list[MigrationExecutor]]:
    """Within, every ``MigrationExecutor`` Django's ``migrate`` command makes is recorded in
    the list yielded (the preflight reuses its loader rather than building the graph
    again). Django's command names the class in its module; the name is restored after."""
    from django.core.management.commands import migrate as django_migrate

    made: list[MigrationExecutor] = []
    original = getattr(django_migrate, "MigrationExecutor")  # noqa: B009 - untyped there

    class Recorded(original):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    setattr(django_migrate, "MigrationExecutor", Recorded)  # noqa: B010
    try:
        yield made
    finally:
        setattr(django_migrate, "MigrationExecutor", original)  # noqa: B010
