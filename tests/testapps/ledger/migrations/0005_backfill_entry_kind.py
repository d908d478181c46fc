# ruff: noqa: RUF012
"""Backfill: ``kind`` is "credit" for non-negative amounts, else "debit"; set values are kept."""

from django.db import migrations


def backfill(apps, schema_editor):
    Entry = apps.get_model("ledger", "Entry")
    entries = Entry.objects.using(schema_editor.connection.alias).filter(kind__isnull=True)
    entries.filter(amount_cents__gte=0).update(kind="credit")
    entries.filter(amount_cents__lt=0).update(kind="debit")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0004_entry_kind")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
