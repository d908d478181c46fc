# ruff: noqa: RUF012
from django.db.models import F

from migtools import CheckedMigration
from migtools.operations import RunBackfill


def count_up(apps, batch):
    batch.update(n=F("n") + 1, label="counted")


def count_down(apps, batch):
    batch.update(n=F("n") - 1, label=None)


class Migration(CheckedMigration):
    is_post_deployment = True
    atomic = False
    dependencies = [("tally", "0001_initial")]
    operations = [RunBackfill("tally.Counter", count_up, batch_size=7, reverse=count_down)]
