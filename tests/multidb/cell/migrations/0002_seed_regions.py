# ruff: noqa: RUF012
from django.db import migrations

from migtools import CheckedMigration
from migtools.operations import SafeRunSQL


def seed_regions(apps, schema_editor):
    Region = apps.get_model("cell", "Region")
    Region.objects.using(schema_editor.connection.alias).bulk_create(
        [Region(code="eu"), Region(code="us")]
    )


def unseed_regions(apps, schema_editor):
    apps.get_model("cell", "Region").objects.using(schema_editor.connection.alias).all().delete()


class Migration(CheckedMigration):
    is_post_deployment = False
    dependencies = [("cell", "0001_initial")]
    operations = [
        # cell.Region lives in the control silo: the hint sends this RunPython there.
        migrations.RunPython(seed_regions, unseed_regions, hints={"silo": "control"}),
        # No hints: the router routes it by app (cell: default). run-without-hints warns.
        SafeRunSQL("UPDATE cell_item SET name = trim(name)", migrations.RunSQL.noop),
    ]
