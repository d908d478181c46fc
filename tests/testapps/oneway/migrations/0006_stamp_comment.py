# ruff: noqa: RUF012
"""A custom operation that declares itself reversible and refuses to run backwards."""

from django.db import migrations

from tests.testapps.oneway.operations import StampComment


class Migration(migrations.Migration):
    dependencies = [("oneway", "0005_ticket_closed")]

    operations = [StampComment("oneway_ticket", "tickets")]
