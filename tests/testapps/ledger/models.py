"""A small ledger with real migrations, for migtools' migration tests (not a MIGTOOLS_APPS app)."""

from __future__ import annotations

from django.db import models


class Currency(models.Model):
    code = models.CharField(max_length=3, unique=True)
    name = models.CharField(max_length=50)


class Account(models.Model):
    name = models.CharField(max_length=100)
    closed = models.BooleanField(default=False)


class Entry(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="entries")
    amount_cents = models.BigIntegerField()
    kind = models.CharField(max_length=6)
