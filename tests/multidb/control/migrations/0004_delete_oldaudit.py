# ruff: noqa: RUF012
from django.db import models

from migtools import CheckedMigration
from migtools.operations import DeletionAction, SafeDeleteModel


class Migration(CheckedMigration):
    is_post_deployment = True
    dependencies = [("control", "0003_pending_oldaudit")]
    operations = [
        SafeDeleteModel(
            "OldAudit",
            deletion_action=DeletionAction.DELETE,
            fields=[
                ("id", models.BigAutoField(primary_key=True)),
                ("note", models.TextField(null=True)),
            ],
        )
    ]
