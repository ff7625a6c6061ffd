from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list = []
    operations = [
        migrations.RunSQL("CREATE SCHEMA shop", reverse_sql="DROP SCHEMA shop"),
        migrations.CreateModel(
            name="Customer",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100)),
                ("email", models.CharField(blank=True, default="", max_length=200)),
            ],
        ),
        migrations.CreateModel(
            name="Order",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("status", models.CharField(default="new", max_length=20)),
                ("total", models.DecimalField(decimal_places=2, max_digits=10)),
                ("customer", models.ForeignKey(null=True, on_delete=models.deletion.SET_NULL, to="shop.customer")),
            ],
            options={"db_table": 'shop"."Orders'},
        ),
        migrations.CreateModel(
            name="OrderLine",
            fields=[
                ("pk", models.CompositePrimaryKey("order_id", "line_no", blank=True, editable=False,
                                                  primary_key=True, serialize=False)),
                ("line_no", models.IntegerField()),
                ("sku", models.CharField(max_length=20)),
                ("quantity", models.IntegerField()),
                ("order", models.ForeignKey(on_delete=models.deletion.CASCADE, to="shop.order")),
            ],
        ),
    ]
