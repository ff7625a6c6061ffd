"""The end-to-end case's view: one save() (an UPDATE of one row by key)."""

from __future__ import annotations

import datetime
import itertools
from decimal import Decimal

from django.http import HttpRequest, HttpResponse

from .models import Ours, PghRow, Untracked

MODELS = {"plain": Untracked, "pghistory": PghRow, "ours": Ours}
WHEN = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
COUNTER = itertools.count(1)  # a new value each save, so that every save changes the row


def save(request: HttpRequest, variant: str, key: int) -> HttpResponse:
    row = MODELS[variant](id=key, a=next(COUNTER), b=str(key), c=Decimal("1.50"), d=WHEN, e=True)
    row.save(force_update=True)
    return HttpResponse(status=204)
