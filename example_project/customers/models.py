from __future__ import annotations

from django.conf import settings
from django.db import models


class Customer(models.Model):
    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200)
    # What the shop shows; backfilled from full_name by 0003_backfill_display_name.
    display_name = models.CharField(max_length=200, blank=True, db_default="")
    # Guests check out without an account.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="customer",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.display_name or self.full_name
