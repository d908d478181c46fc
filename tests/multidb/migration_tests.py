"""A data-migration test of the multi-database project, run by ``tests/test_multidb.py`` in a
pytest subprocess (``--ds tests.multidb.settings``). ``MULTIDB_TEST_CONNECTION`` picks the
alias: ``control`` is where ``control.Account`` lives; ``default`` is the guide's mistake."""

from __future__ import annotations

import os
from typing import Any

from migtools.testing import TestMigrations


class TestBackfillPlan(TestMigrations):
    app = "control"
    migrate_from = "0001_initial"
    migrate_to = "0002_backfill_plan"
    connection = os.environ.get("MULTIDB_TEST_CONNECTION", "control")

    def setup_before_migration(self, apps: Any) -> None:
        account = apps.get_model("control", "Account")
        account.objects.using(self.connection).bulk_create(
            [account(email=f"a{i}@example.com") for i in range(120)]
        )

    def test_every_account_gets_the_free_plan_once(self) -> None:
        account = self.apps.get_model("control", "Account")
        rows = account.objects.using(self.connection)
        assert rows.count() == 120
        assert set(rows.values_list("plan", "visits")) == {("free", 1)}


def test_backfill_plan_through_the_fixture(migtools_migrator: Any) -> None:
    alias = os.environ.get("MULTIDB_TEST_CONNECTION", "control")
    apps = migtools_migrator.before(
        "0001_initial", app="control", connection=alias, migrate_to="0002_backfill_plan"
    )
    apps.get_model("control", "Account").objects.using(alias).create(email="f@example.com")
    after = migtools_migrator.after("0002_backfill_plan")
    account = after.get_model("control", "Account").objects.using(alias).get()
    assert (account.plan, account.visits) == ("free", 1)
