# ruff: noqa: RUF012
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ledger", "0005_backfill_entry_kind")]

    operations = [
        migrations.AlterField(
            model_name="entry",
            name="kind",
            field=models.CharField(max_length=6),
        ),
    ]
