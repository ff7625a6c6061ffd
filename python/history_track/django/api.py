"""History from models: events, the table as it was, revert, manual events.

``events(order)`` is one row's history (following key changes back),
``events(Order)`` the whole table's, oldest first, as
:class:`history_track.Event` objects (``data``, ``diff``, ``context``).
``as_of(Order, ts)`` is a RawQuerySet of model instances as they were at
``ts``. Tables are named through ``Model._meta.db_table``, quoted the way
Django quotes it, so mixed-case names and ``'schema"."table'`` work.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models, router
from django.db.models.query import RawQuerySet

from ..api import (
    Event,
    api_schema,
    event_from_row,
    history_query,
    key_text,
    loads,
    record_event_query,
    revert_row_query,
)


def _model(obj: models.Model | type[models.Model]) -> type[models.Model]:
    return obj if isinstance(obj, type) else type(obj)


def _alias(obj: models.Model | type[models.Model], using: str | None) -> str:
    if using is not None:
        return using
    if not isinstance(obj, type) and obj._state.db is not None:
        return str(obj._state.db)
    return str(router.db_for_read(_model(obj)))


def _table(model: type[models.Model], alias: str) -> str:
    """The table as a regclass literal: Django's quoting of db_table."""
    return str(connections[alias].ops.quote_name(model._meta.db_table))


def _key(key: Any) -> str:
    return key_text(key, DjangoJSONEncoder)


def _saved_key(obj: models.Model) -> Any:
    """obj's primary key; refused for an instance not saved yet."""
    if obj.pk is None:
        raise ValueError(f"{type(obj).__name__} instance has no primary key value; save it first")
    return obj.pk


def _json(value: Any) -> Any:
    # Django's psycopg backend loads jsonb as text (JSONField decodes it
    # itself); numbers are decoded exactly, as the core API does (12.50 is
    # Decimal('12.50')).
    return loads(value) if isinstance(value, str) else value


def events(
    obj: models.Model | type[models.Model],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    last: int | None = None,
    context_id: UUID | str | None = None,
    using: str | None = None,
) -> list[Event]:
    """The events of one instance (by its primary key) or of a model's table,
    oldest first; ``last`` keeps the latest N."""
    alias = _alias(obj, using)
    model = _model(obj)
    key = None if isinstance(obj, type) else _saved_key(obj)
    with connections[alias].cursor() as cur:
        cur.execute(
            *history_query(
                api_schema(connections[alias]),
                _table(model, alias),
                key,
                context_id,
                since,
                until,
                last,
                DjangoJSONEncoder,
            )
        )
        names = [column[0] for column in cur.description]  # (DB-API: a column's name comes first)
        rows = cur.fetchall()
    return [event_from_row(dict(zip(names, row)), _json) for row in rows]


def as_of(model: type[models.Model], ts: datetime, *, key: Any = None, using: str | None = None) -> RawQuerySet:
    """The model's rows as they were at ``ts`` (or the one with primary key
    ``key``), as unsaved-looking model instances in primary-key order."""
    alias = _alias(model, using)
    pk_columns = [f.column for f in getattr(model._meta, "pk_fields", [model._meta.pk])]
    qn = connections[alias].ops.quote_name
    order = ", ".join(qn(c) for c in pk_columns)
    return model._default_manager.db_manager(alias).raw(
        # (history_track's own replay, every parameter typed: see doc/security.md, "Anyone")
        f"SELECT * FROM history_track._history_as_of(NULL::{_table(model, alias)}, %s::timestamptz, %s::text)"
        f" ORDER BY {order}",
        [ts, None if key is None else _key(key)],
    )


def revert(obj: models.Model, ts: datetime | None = None, *, event: int | None = None, using: str | None = None) -> int:
    """Restore one instance's row to its state at ``ts``, or to what event
    ``event`` recorded (SQL revert_row); recorded with label 'revert' and the
    current context. Returns the number of rows written. The instance itself
    is not reloaded (``obj.refresh_from_db()``)."""
    alias = _alias(obj, using)
    table = _table(type(obj), alias)
    if event is None and ts is None:
        raise TypeError("revert() needs ts or event")
    with connections[alias].cursor() as cur:
        cur.execute(*revert_row_query(api_schema(connections[alias]), table, obj.pk, ts, event, DjangoJSONEncoder))
        row = cur.fetchone()
    return int(row[0])


def record(obj: models.Model, label: str, *, using: str | None = None, **context: Any) -> int:
    """A manual event for one saved instance (SQL record_history_event): its
    current row, labeled ``label``, with ``context`` merged over the active
    context. Returns the event's pgh_id."""
    alias = _alias(obj, using)
    key = _saved_key(obj)
    with connections[alias].cursor() as cur:
        cur.execute(
            *record_event_query(
                api_schema(connections[alias]),
                _table(type(obj), alias),
                key,
                label,
                json.dumps(context, cls=DjangoJSONEncoder) if context else None,
                DjangoJSONEncoder,
            )
        )
        row = cur.fetchone()
    return int(row[0])
