# ruff: noqa: RUF012
from django.db import migrations, models

from migtools import CheckedMigration


class Migration(CheckedMigration):
    is_post_deployment = False
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Counter",
            fields=[
                ("id", models.BigAutoField(primary_key=True)),
                ("n", models.IntegerField(default=0)),
                ("label", models.CharField(max_length=20, null=True)),
            ],
        ),
    ]
