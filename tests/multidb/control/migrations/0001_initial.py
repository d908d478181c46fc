# ruff: noqa: RUF012
from django.db import migrations, models

from migtools import CheckedMigration


class Migration(CheckedMigration):
    is_post_deployment = False
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Account",
            fields=[
                ("id", models.BigAutoField(primary_key=True)),
                ("email", models.CharField(max_length=100)),
                ("plan", models.CharField(max_length=20, null=True)),
                ("visits", models.IntegerField(db_default=0)),
            ],
        ),
        migrations.CreateModel(
            name="OldAudit",
            fields=[
                ("id", models.BigAutoField(primary_key=True)),
                ("note", models.TextField(null=True)),
            ],
        ),
    ]
