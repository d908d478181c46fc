# ruff: noqa: RUF012
from migtools import CheckedMigration
from migtools.operations import DeletionAction, SafeDeleteModel


class Migration(CheckedMigration):
    is_post_deployment = False
    dependencies = [("control", "0002_backfill_plan")]
    # The table stays; tests/multidb/router.py assigns it to the control silo.
    operations = [SafeDeleteModel("OldAudit", deletion_action=DeletionAction.MOVE_TO_PENDING)]
