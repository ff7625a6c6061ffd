from django.db import migrations, models


class Migration(migrations.Migration):
    """Schema changes after tracking: the extension's event triggers follow them."""

    dependencies = [("shop", "0002_track")]
    operations = [
        migrations.AddField(model_name="order", name="note", field=models.TextField(default="")),
        migrations.AlterField(model_name="order", name="status", field=models.CharField(default="new", max_length=40)),
    ]
