# ruff: noqa: RUF012
from django.db import migrations

from migtools import CheckedMigration
from migtools.operations import SafeRunSQL


class Migration(CheckedMigration):
    is_post_deployment = False
    dependencies = [("control", "0004_delete_oldaudit")]
    operations = [
        # No hints: routed by its app (control), and run-without-hints warns there.
        SafeRunSQL("UPDATE control_account SET plan = plan", migrations.RunSQL.noop),
    ]
