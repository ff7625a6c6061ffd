from django.db import migrations

from history_track.django.operations import TrackModel


class Migration(migrations.Migration):
    dependencies = [("benchapp", "0001_initial"), ("history_track", "0001_initial")]
    operations = [TrackModel("benchapp.Ours")]
