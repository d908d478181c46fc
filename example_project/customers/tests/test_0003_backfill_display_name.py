"""The data migration customers.0003_backfill_display_name, tested the migtools way.

`TestMigrations` puts a copy of the test database at `migrate_from`, lets
`setup_before_migration` seed rows through the historical models, applies the migrations up to
`migrate_to`, and then runs the test body. Run with `pytest` in example_project/ (DATABASE_URL
set); `make demo` runs it as its "migration tests" step.
"""

from __future__ import annotations

from migtools.testing import TestMigrations


class BackfillDisplayNameTest(TestMigrations):
    app = "customers"
    migrate_from = "0002_customer_display_name"
    migrate_to = "0003_backfill_display_name"

    def setup_before_migration(self, apps):
        # The historical model at migrate_from: display_name exists, nobody filled it yet.
        Customer = apps.get_model("customers", "Customer")
        self.unnamed = Customer.objects.create(email="ada@example.com", full_name="Ada Lovelace")
        self.named = Customer.objects.create(
            email="grace@example.com", full_name="Grace Hopper", display_name="Amazing Grace"
        )

    def test_backfills_display_name_from_full_name(self):
        self.unnamed.refresh_from_db()
        self.named.refresh_from_db()
        assert self.unnamed.display_name == "Ada Lovelace"
        # A name the customer chose is kept.
        assert self.named.display_name == "Amazing Grace"
