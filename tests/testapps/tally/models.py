"""A RunBackfill migration under TestMigrations (tests/test_backfill_testing.py)."""

from __future__ import annotations

from django.db import models


class Counter(models.Model):
    n = models.IntegerField(default=0)
    label = models.CharField(max_length=20, null=True)
