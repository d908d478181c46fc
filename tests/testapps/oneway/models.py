"""Migrations that cannot all run backwards, under TestMigrations (tests/test_testing_forward.py)."""

from __future__ import annotations

from django.db import models


class Ticket(models.Model):
    title = models.CharField(max_length=100)
    status = models.CharField(max_length=20, null=True)
    closed = models.BooleanField(default=False)
