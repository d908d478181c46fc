"""The data rules, through verify_migrations on real migrations: a RunPython writing to a
large table is a finding whose recipe is RunBackfill; RunBackfill outside a post-deployment
migration, or in an atomic one, is a finding too."""

from __future__ import annotations

import contextlib
import json
from io import StringIO
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import migrations
from django.db.migrations.loader import MigrationLoader
from django.test import override_settings

from migtools.operations import RunBackfill
from migtools.rules import data
from migtools.rules.catalogue import CATALOGUE

pytestmark = pytest.mark.django_db(databases="__all__")  # the verifier judges every alias


def _findings(*args: str) -> list[dict[str, Any]]:
    out = StringIO()
    # Findings at error level exit 1; the JSON is written first.
    with contextlib.suppress(CommandError):
        call_command("verify_migrations", *args, "--format", "json", stdout=out)
    text = out.getvalue()
    payload = json.loads(text[text.index("{") :] if "{" in text else text)
    return list(payload["findings"] if isinstance(payload, dict) else payload)


def _rules(findings: list[dict[str, Any]], migration: str) -> set[str]:
    return {f["rule"] for f in findings if f["migration"] == migration}


def test_run_python_on_a_large_table_recommends_run_backfill() -> None:
    with override_settings(MIGTOOLS_LARGE_TABLES=["ledger_entry"]):
        findings = _findings("ledger", "0005_backfill_entry_kind")
    # One finding per database the migration runs on (no router: every alias).
    assert {f["database"] for f in findings} == {"default", "other"}
    hit = [
        f
        for f in findings
        if f["rule"] == "run-python-on-large-table" and f["database"] == "default"
    ]
    assert len(hit) == 1, findings
    assert hit[0]["message"] == (
        "RunPython(backfill) writes to large table 'ledger_entry' in one transaction; use "
        "migtools.operations.RunBackfill."
    )
    assert "RunBackfill" in CATALOGUE["run-python-on-large-table"].recipe[0]


def test_run_python_on_a_small_table_is_not_a_finding() -> None:
    findings = _findings("ledger", "0005_backfill_entry_kind")
    assert "run-python-on-large-table" not in _rules(findings, "0005_backfill_entry_kind")


def test_post_deployment_non_atomic_backfill_is_clean() -> None:
    findings = _findings("tally", "0002_count_up")
    rules = _rules(findings, "0002_count_up")
    assert not rules & {"backfill-not-post-deployment", "backfill-in-atomic-migration"}


def _state() -> Any:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return loader.project_state(("tally", "0001_initial"))


def _noop(apps: Any, batch: Any) -> None:
    pass


def test_backfill_in_pre_deploy_atomic_migration_breaks_both_rules() -> None:
    op = RunBackfill("tally.Counter", _noop)
    migration = SimpleNamespace(atomic=True, is_post_deployment=False)
    rules = [r for r, _ in data.hits(migration, op, _state(), ())]  # type: ignore[arg-type]
    assert rules == ["backfill-in-atomic-migration", "backfill-not-post-deployment"]
    assert CATALOGUE["backfill-not-post-deployment"].allowed_in  # stage-aware: fine post-deploy


def test_reading_only_run_python_is_not_a_write() -> None:
    def reads(apps: Any, schema_editor: Any) -> None:
        list(apps.get_model("tally", "Counter").objects.all())

    def writes(apps: Any, schema_editor: Any) -> None:
        apps.get_model("tally", "Counter").objects.update(n=1)

    state = _state()
    assert data.written_tables(reads, state) == []
    assert data.written_tables(writes, state) == ["tally_counter"]
    op = migrations.RunPython(writes)
    assert data.hits(None, op, state, {"tally_counter"})[0][0] == "run-python-on-large-table"
