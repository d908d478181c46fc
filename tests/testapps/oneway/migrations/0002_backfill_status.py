# ruff: noqa: RUF012
"""The data migration under test: a missing status becomes "open"."""

from django.db import migrations


def backfill(apps, schema_editor):
    Ticket = apps.get_model("oneway", "Ticket")
    Ticket.objects.using(schema_editor.connection.alias).filter(status__isnull=True).update(
        status="open"
    )


class Migration(migrations.Migration):
    dependencies = [("oneway", "0001_initial")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
