"""CREATE EXTENSION IF NOT EXISTS history_track.

Migrations that track models depend on this one:
``dependencies = [..., ("history_track", "0001_initial")]``. If the role that
runs ``migrate`` may not create extensions, create it beforehand as a
superuser; this migration then finds it and does nothing.
"""

from django.db import migrations


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [
        migrations.RunSQL(
            "CREATE EXTENSION IF NOT EXISTS history_track",
            # Refused by the extension while any table is tracked.
            reverse_sql="DROP EXTENSION IF EXISTS history_track",
        ),
    ]
