# ruff: noqa: RUF012
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ledger", "0003_seed_currencies")]

    operations = [
        migrations.AddField(
            model_name="entry",
            name="kind",
            field=models.CharField(max_length=6, null=True),
        ),
    ]
