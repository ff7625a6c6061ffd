from django.db import models


class Customer(models.Model):
    full_name = models.CharField(max_length=100)
    email = models.CharField(max_length=200, blank=True, default="")

    def __str__(self) -> str:
        return self.full_name


class Order(models.Model):
    """In its own schema, with a mixed-case table name: Django's schema idiom."""

    customer = models.ForeignKey(Customer, null=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=40, default="new")
    total = models.DecimalField(max_digits=10, decimal_places=2)
    note = models.TextField(default="")

    class Meta:
        db_table = 'shop"."Orders'


class OrderLine(models.Model):
    """A composite primary key."""

    pk = models.CompositePrimaryKey("order_id", "line_no")
    order = models.ForeignKey(Order, on_delete=models.CASCADE)
    line_no = models.IntegerField()
    sku = models.CharField(max_length=20)
    quantity = models.IntegerField()
