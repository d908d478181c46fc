# ruff: noqa: RUF012
from django.db import migrations, models

from migtools import CheckedMigration


class Migration(CheckedMigration):
    is_post_deployment = False
    dependencies = [("cell", "0002_seed_regions")]
    operations = [
        # control (cell.Region is routed there): safe.
        migrations.AddField("region", "label", models.CharField(max_length=40, null=True)),
        # default: an index built without CONCURRENTLY on an existing table (refused there).
        migrations.AddIndex("item", models.Index(fields=["name"], name="cell_item_name_idx")),
    ]
