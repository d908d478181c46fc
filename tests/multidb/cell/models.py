from __future__ import annotations

from django.db import models


class Item(models.Model):  # default silo
    name = models.CharField(max_length=100)

    class Meta:
        indexes = [models.Index(fields=["name"], name="cell_item_name_idx")]  # noqa: RUF012


class Region(models.Model):  # routed to control by model
    code = models.CharField(max_length=10)
    label = models.CharField(max_length=40, null=True)
