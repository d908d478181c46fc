from __future__ import annotations

from django.db import models


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PAID = "paid", "Paid"
        SHIPPED = "shipped", "Shipped"
        CANCELLED = "cancelled", "Cancelled"

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="orders"
    )
    status = models.CharField(max_length=16, choices=Status.choices, db_default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = (models.Index(fields=["status", "created_at"], name="orders_status_created_idx"),)

    def __str__(self) -> str:
        return f"Order #{self.pk}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    # Cross-app: orders' migrations depend on catalog's.
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    # The price at the time of the order; the catalog's price may change later.
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=["order", "product"], name="orders_line_unique_product"),
            models.CheckConstraint(
                condition=models.Q(quantity__gte=1), name="orders_line_quantity_gte_1"
            ),
        )

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"
