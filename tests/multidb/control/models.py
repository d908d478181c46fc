from __future__ import annotations

from django.db import models


class Account(models.Model):
    email = models.CharField(max_length=100)
    plan = models.CharField(max_length=20, null=True)
    visits = models.IntegerField(db_default=0)
