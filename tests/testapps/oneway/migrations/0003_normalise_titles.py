# ruff: noqa: RUF012
"""Irreversible: a RunPython without reverse_code."""

from django.db import migrations
from django.db.models.functions import Upper


def normalise(apps, schema_editor):
    Ticket = apps.get_model("oneway", "Ticket")
    Ticket.objects.using(schema_editor.connection.alias).update(title=Upper("title"))


class Migration(migrations.Migration):
    dependencies = [("oneway", "0002_backfill_status")]

    operations = [migrations.RunPython(normalise)]
