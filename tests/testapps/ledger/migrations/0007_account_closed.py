# ruff: noqa: RUF012
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ledger", "0006_entry_kind_not_null")]

    operations = [
        migrations.AddField(
            model_name="account",
            name="closed",
            field=models.BooleanField(default=False),
        ),
    ]
