# ruff: noqa: RUF012
"""Irreversible: a RunSQL without reverse_sql."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("oneway", "0003_normalise_titles")]

    operations = [
        migrations.RunSQL("CREATE INDEX oneway_ticket_status_sql ON oneway_ticket (status)")
    ]
