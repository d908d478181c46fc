"""``migtools.rules.routing``: operations asked of the router as Django asks, the engine
judging only what runs on its alias, and the ``run-without-hints`` heuristic."""

from __future__ import annotations

from typing import Any

from django.db import connections, migrations, models
from django.db.migrations.state import ProjectState
from django.test.utils import override_settings

from migtools import CheckedMigration
from migtools.rules import routing
from migtools.rules.engine import Engine

ROUTER = "tests.test_routing.HintRouter"


class HintRouter:
    """alpha on default; anything hinted {"target": alias} goes there."""

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool:
        if "target" in hints:
            return db == hints["target"]
        return db == "default"


class SignatureOnlyRouter:
    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool:
        return db == "default"


def noop(apps: Any, schema_editor: Any) -> None:
    pass


def _migration(*operations: Any) -> CheckedMigration:
    class Migration(CheckedMigration):
        is_post_deployment = False

    migration = Migration("0002_x", "alpha")
    migration.operations = list(operations)
    migration.atomic = False  # collected without a transaction: no connection needed
    return migration


@override_settings(DATABASE_ROUTERS=[ROUTER])
def test_routed_asks_like_django() -> None:
    state = ProjectState()
    create = migrations.CreateModel("Thing", [("id", models.BigAutoField(primary_key=True))])
    create.state_forwards("alpha", state)
    add = migrations.AddField("thing", "n", models.IntegerField(null=True))
    assert routing.routed(add, "alpha", "default", state)
    assert not routing.routed(add, "alpha", "other", state)
    hinted = migrations.RunPython(noop, noop, hints={"target": "other"})
    assert routing.databases(hinted, "alpha", ["default", "other"]) == ["other"]
    plain = migrations.RunSQL("SELECT 1", "SELECT 1")
    assert routing.databases(plain, "alpha", ["default", "other"]) == ["default"]
    both = migrations.SeparateDatabaseAndState(database_operations=[hinted])
    assert routing.databases(both, "alpha", ["default", "other"]) == ["other"]


def test_reads_hints_heuristic() -> None:
    with override_settings(DATABASE_ROUTERS=[ROUTER]):
        assert routing.reads_hints()
    with override_settings(DATABASE_ROUTERS=["tests.test_routing.SignatureOnlyRouter"]):
        assert not routing.reads_hints()  # takes **hints, never reads them
    with override_settings(DATABASE_ROUTERS=[]):
        assert not routing.reads_hints()


@override_settings(DATABASE_ROUTERS=[ROUTER])
def test_engine_judges_only_what_runs_on_its_alias() -> None:
    # A RunPython without reverse (an error) routed to "other", one without hints (default).
    migration = _migration(
        migrations.RunPython(noop, hints={"target": "other"}),
        migrations.RunPython(noop, noop),
    )
    on_default = Engine(connections["default"]).judge(migration, ProjectState())
    rules = {(f.rule_id, f.operation_index, f.database) for f in on_default.findings}
    assert ("run-python-without-reverse", 0, "default") not in rules  # skipped there
    assert ("run-without-hints", 1, "default") in rules
    assert any("the router skips it" in e for e in on_default.entries)
    on_other = Engine(connections["other"]).judge(migration, ProjectState())
    rules = {(f.rule_id, f.operation_index, f.database) for f in on_other.findings}
    assert ("run-python-without-reverse", 0, "other") in rules
    assert not any(f.operation_index == 1 for f in on_other.findings)


def test_no_router_means_every_alias_and_no_hint_warning() -> None:
    migration = _migration(migrations.RunPython(noop, noop))
    judged = Engine(connections["other"]).judge(migration, ProjectState())
    assert "run-without-hints" not in {f.rule_id for f in judged.findings}
    assert all(f.database == "other" for f in judged.findings)
