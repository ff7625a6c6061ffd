"""The SQL API, wrapped for psycopg 3.

Every function takes an open connection and runs in its current transaction
(commit is the caller's business). Errors are psycopg's own exception classes,
with PostgreSQL's SQLSTATE in ``exc.sqlstate``.

JSON numbers in what these functions return (an event's ``data`` and
``diff``, jsonb columns) are decoded exactly: a ``numeric`` 12.50 comes back
as ``Decimal('12.50')``, never as the float 12.5. Only the cursors these
functions open decode that way; the connection's own loaders, and so the
caller's other queries, are left alone.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb, set_json_loads


def loads(text: str | bytes) -> Any:
    """JSON as history_track reads it: numbers with a fraction or an exponent
    as Decimal (exact, and 25.00 keeps its scale), integers as int."""
    return json.loads(text, parse_float=decimal.Decimal)


def _cursor(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
    """A cursor of ``conn`` whose json and jsonb values are decoded by
    :func:`loads`; the connection's loaders are not changed."""
    cur = conn.cursor(row_factory=tuple_row)
    set_json_loads(loads, cur)
    return cur


def _value(conn: psycopg.Connection[Any], query: str, params: Sequence[Any]) -> Any:
    """The first column of the one row ``query`` returns."""
    with _cursor(conn) as cur:
        row = cur.execute(query, params).fetchone()
    assert row is not None
    return row[0]


@dataclass(frozen=True)
class Tracker:
    """One row of the history_trackers view."""

    table_name: str
    event_table: str
    label: str
    operations: list[str]
    condition: str | None
    snapshot: str | None
    changed: list[str] | None


@dataclass(frozen=True)
class Event:
    """One row of history_events(): an event, its row (``data``) and what it
    changed (``diff``: ``{column: [before, after]}``)."""

    table_name: str
    id: int
    created_at: datetime
    label: str
    operation: str
    obj_id: Any
    context_id: UUID | None
    context: dict[str, Any] | None
    data: dict[str, Any] = field(default_factory=dict)
    diff: dict[str, list[Any]] | None = None


def track_table(
    conn: psycopg.Connection[Any],
    table: str,
    *,
    label: str | None = None,
    operations: Sequence[str] | None = None,
    condition: str | None = None,
    changed: Sequence[str] | None = None,
    snapshot: str | None = None,
    columns: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    baseline: bool = False,
) -> str:
    """SELECT track_table(...): returns the event table's name.

    ``table`` is resolved like a regclass literal: ``'orders'``,
    ``'sales.orders'``, ``'"Mixed Case"'``.
    """
    return str(
        _value(
            conn,
            "SELECT track_table(%s::regclass, label => %s, operations => %s, condition => %s,"
            " changed => %s, snapshot => %s, columns => %s, exclude => %s, baseline => %s)::text",
            [
                table,
                label,
                list(operations) if operations is not None else None,
                condition,
                list(changed) if changed is not None else None,
                snapshot,
                list(columns) if columns is not None else None,
                list(exclude) if exclude is not None else None,
                baseline,
            ],
        )
    )


def untrack_table(
    conn: psycopg.Connection[Any], table: str, *, label: str | None = None, drop_events: bool = False
) -> None:
    """SELECT untrack_table(...)."""
    _value(conn, "SELECT untrack_table(%s::regclass, label => %s, drop_events => %s)", [table, label, drop_events])


def trackers(conn: psycopg.Connection[Any], table: str | None = None) -> list[Tracker]:
    """The rows of history_trackers, for one table or all."""
    query = (
        "SELECT table_name::text, event_table::text, label, operations, condition, snapshot,"
        " changed::text[] FROM history_trackers"
    )
    params: list[Any] = []
    if table is not None:
        query += " WHERE table_name = %s::regclass"
        params.append(table)
    with _cursor(conn) as cur:
        return [Tracker(*row) for row in cur.execute(query, params)]


def key_text(key: Any, encoder: type[json.JSONEncoder] | None = None) -> str:
    """A key as the SQL functions take it: the value, or a JSON array for a
    composite key (its values encoded with ``encoder``)."""
    return json.dumps(list(key), cls=encoder) if isinstance(key, (list, tuple)) else str(key)


def history_query(
    table: str | None,
    key: Any,
    context_id: UUID | str | None,
    since: datetime | None,
    until: datetime | None,
    last: int | None,
    encoder: type[json.JSONEncoder] | None = None,
) -> tuple[str, list[Any]]:
    """The history_events() query and its parameters; its rows are Event's
    fields in order (shared by history() and history_track.django.events())."""
    return (
        (
            "SELECT table_name::text, pgh_id, pgh_created_at, pgh_label, pgh_operation, pgh_obj_id,"
            " pgh_context_id, pgh_context, data, diff"
            " FROM history_events(%s::regclass, %s, %s::uuid, %s, %s, %s)"
        ),
        [
            table,
            None if key is None else key_text(key, encoder),
            None if context_id is None else str(context_id),
            since,
            until,
            last,
        ],
    )


def history(
    conn: psycopg.Connection[Any],
    table: str | None = None,
    *,
    key: Any = None,
    context_id: UUID | str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    last: int | None = None,
) -> list[Event]:
    """SELECT * FROM history_events(...): events oldest first, with data and diff.
    With ``key`` (a value, or a list for a composite key), one row's history,
    followed back through key changes; with ``last``, only the last N events.

    Without ``table``, the events of every table you may read, in one timeline:
    ordered by time (``pgh_created_at``, the writing transaction's start), then
    table, then ``pgh_id``; ``last`` keeps the latest N of them all (the SQL
    function returns the last N of each table, merged here)."""
    with _cursor(conn) as cur:
        events = [Event(*row) for row in cur.execute(*history_query(table, key, context_id, since, until, last))]
    if table is None:
        events.sort(key=lambda e: (e.created_at, e.table_name, e.id))
        if last is not None:
            events = events[-last:] if last > 0 else []
    return events


def as_of(conn: psycopg.Connection[Any], table: str, ts: datetime, *, key: Any = None) -> list[dict[str, Any]]:
    """SELECT * FROM history_as_of(NULL::table, ts): the table's rows as they
    were at ``ts`` (or the one row with ``key``), as dicts, in key order."""
    rel = sql.SQL(_value(conn, "SELECT %s::regclass::text", [table]))
    with _cursor(conn) as cur:
        cur.execute(
            sql.SQL("SELECT * FROM history_as_of(NULL::{}, %s, %s) ORDER BY 1").format(rel),
            [ts, None if key is None else key_text(key)],
        )
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def revert_row(
    conn: psycopg.Connection[Any], table: str, key: Any = None, ts: datetime | None = None, *, event: int | None = None
) -> int:
    """Restore one row to its state at ``ts`` (by ``key``), or to the state
    event ``event`` recorded; returns the number of rows written."""
    if event is not None:
        return int(_value(conn, "SELECT revert_row(%s::regclass, %s::bigint)", [table, event]))
    return int(_value(conn, "SELECT revert_row(%s::regclass, %s::text, %s)", [table, key_text(key), ts]))


def revert_table(conn: psycopg.Connection[Any], table: str, ts: datetime) -> int:
    """Restore a whole table to its state at ``ts``; returns the number of rows written."""
    return int(_value(conn, "SELECT revert_table(%s::regclass, %s)", [table, ts]))


@dataclass(frozen=True)
class ContextEvent:
    """One row of history_context_events(): an event of one context, in any table."""

    table_name: str
    event_table: str
    id: int
    created_at: datetime
    label: str
    operation: str
    obj_id: Any
    context: dict[str, Any] | None
    data: dict[str, Any]


def context_events(conn: psycopg.Connection[Any], context_id: UUID | str) -> list[ContextEvent]:
    """Every event of one context across the event tables the caller may read."""
    with _cursor(conn) as cur:
        return [
            ContextEvent(*row)
            for row in cur.execute(
                "SELECT table_name::text, event_table::text, pgh_id, pgh_created_at, pgh_label, pgh_operation,"
                " pgh_obj_id, pgh_context, data FROM history_context_events(%s)",
                [str(context_id)],
            )
        ]


def record_event(
    conn: psycopg.Connection[Any], table: str, key: Any, label: str, context: dict[str, Any] | None = None
) -> int:
    """SELECT record_history_event(...): a manual event for one row; returns its pgh_id.
    ``key`` is the primary key's value, or a list for a composite key."""
    return int(
        _value(
            conn,
            "SELECT record_history_event(%s::regclass, %s::text, %s, %s)",
            [table, key_text(key), label, Jsonb(context) if context is not None else None],
        )
    )
