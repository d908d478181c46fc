# ruff: noqa: RUF012
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("oneway", "0004_status_index")]

    operations = [migrations.AddField("ticket", "closed", models.BooleanField(default=False))]
