"""One table shape for every variant: a bigint key and five columns."""

from __future__ import annotations

import pghistory
from django.db import models

TRACKERS = (pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())


class Shape(models.Model):
    id = models.BigIntegerField(primary_key=True)
    a = models.IntegerField()
    b = models.TextField(null=True)
    c = models.DecimalField(max_digits=12, decimal_places=2, null=True)
    d = models.DateTimeField(null=True)
    e = models.BooleanField(null=True)

    class Meta:
        abstract = True


class Untracked(Shape):
    class Meta:
        db_table = "t_untracked"


class Ours(Shape):
    """Tracked by history_track (migration 0002: TrackModel, the defaults)."""

    class Meta:
        db_table = "t_ours"


# django-pghistory's defaults (row triggers; insert and update trackers, with
# delete added so that every statement of the benchmark is recorded).
@pghistory.track(*TRACKERS)
class PghRow(Shape):
    class Meta:
        db_table = "t_pgh_row"


# The same with statement-level triggers (transition tables).
@pghistory.track(*TRACKERS, level=pghistory.Statement)
class PghStmt(Shape):
    class Meta:
        db_table = "t_pgh_stmt"
