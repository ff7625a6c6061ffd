from django.db import migrations

from history_track.django.operations import TrackModel


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial"), ("history_track", "0001_initial")]
    operations = [
        TrackModel("shop.Order"),
        TrackModel("shop.Order", label="paid", operations=["update"],
                   condition="OLD.status IS DISTINCT FROM 'paid' AND NEW.status = 'paid'"),
        TrackModel("shop.Customer", exclude=["email"]),
        TrackModel("shop.OrderLine"),
    ]
