# ruff: noqa: RUF012
import os
import time

from django.db.models import F

from migtools import CheckedMigration
from migtools.operations import RunBackfill


def set_plan(apps, batch):
    batch.update(plan="free", visits=F("visits") + 1)
    time.sleep(float(os.environ.get("MULTIDB_BACKFILL_SLEEP", "0")))


def unset_plan(apps, batch):
    batch.update(plan=None, visits=F("visits") - 1)


class Migration(CheckedMigration):
    is_post_deployment = True
    atomic = False
    dependencies = [("control", "0001_initial")]
    operations = [RunBackfill("control.Account", set_plan, batch_size=50, reverse=unset_plan)]
