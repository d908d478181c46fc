from __future__ import annotations

from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]  # noqa: RUF012 (a list, as the migrations state it)
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    sku = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    # db_default, not default: the database fills existing rows and rows inserted by code
    # that predates the column, so adding it needs no table rewrite and no backfill.
    is_active = models.BooleanField(db_default=True)
    description = models.TextField(blank=True, db_default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = (
            models.CheckConstraint(
                condition=models.Q(price__gte=0), name="catalog_product_price_gte_0"
            ),
        )

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"
