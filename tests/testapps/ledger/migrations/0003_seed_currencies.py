# ruff: noqa: RUF012
"""Data migration: reference rows every database needs (tests check they survive)."""

from django.db import migrations

CURRENCIES = [("EUR", "Euro"), ("USD", "US dollar")]


def seed(apps, schema_editor):
    Currency = apps.get_model("ledger", "Currency")
    alias = schema_editor.connection.alias
    for code, name in CURRENCIES:
        Currency.objects.using(alias).get_or_create(code=code, defaults={"name": name})


def unseed(apps, schema_editor):
    Currency = apps.get_model("ledger", "Currency")
    alias = schema_editor.connection.alias
    Currency.objects.using(alias).filter(code__in=[code for code, _ in CURRENCIES]).delete()


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_currency")]

    operations = [migrations.RunPython(seed, unseed)]
