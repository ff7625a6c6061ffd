from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand

import history_track.django as history
from shop.models import Order


class Command(BaseCommand):
    help = "Import two orders (a stand-in for a nightly job)."

    @history.context(job="nightly-import")
    def handle(self, *args: Any, **options: Any) -> None:
        Order.objects.create(total=Decimal("10.00"))
        with history.context(batch=2):
            Order.objects.create(total=Decimal("20.00"))
