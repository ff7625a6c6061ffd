from django.db import migrations


class Migration(migrations.Migration):
    """A renamed field of a tracked model: the event table's column follows."""

    dependencies = [("shop", "0003_note")]
    operations = [
        migrations.RenameField(model_name="customer", old_name="name", new_name="full_name"),
    ]
