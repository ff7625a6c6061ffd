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
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import RowFactory, class_row, dict_row, tuple_row
from psycopg.types.json import Jsonb, set_json_loads


def loads(text: str | bytes) -> Any:
    """JSON as history_track reads it: numbers with a fraction or an exponent
    as Decimal (exact, and 25.00 keeps its scale), integers as int."""
    return json.loads(text, parse_float=decimal.Decimal)


def _cursor(conn: psycopg.Connection[Any], row_factory: RowFactory[Any] = tuple_row) -> psycopg.Cursor[Any]:
    """A cursor of ``conn`` whose json and jsonb values are decoded by
    :func:`loads`; the connection's loaders are not changed."""
    cur = conn.cursor(row_factory=row_factory)
    set_json_loads(loads, cur)
    return cur


def _value(conn: psycopg.Connection[Any], query: str, params: Sequence[Any]) -> Any:
    """The first column of the one row ``query`` returns."""
    with _cursor(conn) as cur:
        row = cur.execute(query, params).fetchone()
    assert row is not None
    return row[0]


_API_SCHEMAS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
API_SCHEMA_QUERY = "SELECT history_track._api_schema()"


def api_schema(conn: Any) -> str:
    """The schema history_track's API is installed in, as an SQL identifier
    (asked once per connection). Every call names it: a function of the same
    name and arguments in a schema earlier on the search path (a ``"$user"``
    schema another role created) must not stand in for history_track's, run
    by whoever reads history (doc/security.md, "Anyone"). ``conn``: a psycopg
    connection, or a Django connection (anything whose cursor() is a context
    manager)."""
    schema = _API_SCHEMAS.get(conn)
    if schema is None:
        # (a psycopg connection's own row factory may not make tuples)
        with conn.cursor(row_factory=tuple_row) if isinstance(conn, psycopg.Connection) else conn.cursor() as cur:
            cur.execute(API_SCHEMA_QUERY)
            row = cur.fetchone()
        assert row is not None
        schema = str(row[0])
        _API_SCHEMAS[conn] = schema
    return schema


async def api_schema_async(conn: psycopg.AsyncConnection[Any]) -> str:
    """:func:`api_schema` for an async connection."""
    schema = _API_SCHEMAS.get(conn)
    if schema is None:
        async with conn.cursor(row_factory=tuple_row) as cur:
            row = await (await cur.execute(API_SCHEMA_QUERY)).fetchone()
        assert row is not None
        schema = str(row[0])
        _API_SCHEMAS[conn] = schema
    return schema


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


# Event's fields that hold JSON (jsonb columns of history_events()).
_EVENT_JSON = ("obj_id", "context", "data", "diff")


def event_from_row(row: Mapping[str, Any], decode: Callable[[Any], Any] | None = None) -> Event:
    """An Event from a row of :func:`history_query` read by name (its columns
    are named after Event's fields). ``decode`` is applied to the JSON values
    first, for a driver that returns jsonb undecoded (Django's cursor)."""
    values = dict(row)
    if decode is not None:
        for name in _EVENT_JSON:
            values[name] = decode(values[name])
    return Event(**values)


def _text_array(values: Sequence[str] | None) -> list[str] | None:
    return list(values) if values is not None else None


def track_table_query(
    api: str,
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
) -> tuple[str, list[Any]]:
    """The track_table() call and its parameters; it returns the event
    table's name as text (shared by track_table() and
    history_track.django.operations.TrackModel)."""
    return (
        (
            f"SELECT {api}.track_table(%s::regclass, label => %s::text, operations => %s::text[],"
            " condition => %s::text, changed => %s::text[], snapshot => %s::text, columns => %s::text[],"
            " exclude => %s::text[], baseline => %s::boolean)::text"
        ),
        [
            table,
            label,
            _text_array(operations),
            condition,
            _text_array(changed),
            snapshot,
            _text_array(columns),
            _text_array(exclude),
            baseline,
        ],
    )


def untrack_table_query(
    api: str, table: str, *, label: str | None = None, drop_events: bool = False
) -> tuple[str, list[Any]]:
    """The untrack_table() call and its parameters (shared by untrack_table()
    and history_track.django.operations)."""
    return f"SELECT {api}.untrack_table(%s::regclass, label => %s::text, drop_events => %s::boolean)", [
        table,
        label,
        drop_events,
    ]


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
            *track_table_query(
                api_schema(conn),
                table,
                label=label,
                operations=operations,
                condition=condition,
                changed=changed,
                snapshot=snapshot,
                columns=columns,
                exclude=exclude,
                baseline=baseline,
            ),
        )
    )


def untrack_table(
    conn: psycopg.Connection[Any], table: str, *, label: str | None = None, drop_events: bool = False
) -> None:
    """SELECT untrack_table(...)."""
    _value(conn, *untrack_table_query(api_schema(conn), table, label=label, drop_events=drop_events))


def trackers(conn: psycopg.Connection[Any], table: str | None = None) -> list[Tracker]:
    """The rows of history_trackers, for one table or all."""
    query = (
        "SELECT table_name::text AS table_name, event_table::text AS event_table, label, operations, condition,"
        " snapshot, changed::text[] AS changed FROM " + api_schema(conn) + ".history_trackers"
    )
    params: list[Any] = []
    if table is not None:
        query += " WHERE table_name = %s::regclass"
        params.append(table)
    with _cursor(conn, class_row(Tracker)) as cur:
        return cur.execute(query, params).fetchall()


def key_text(key: Any, encoder: type[json.JSONEncoder] | None = None) -> str:
    """A key as the SQL functions take it: the value, or a JSON array for a
    composite key (its values encoded with ``encoder``)."""
    return json.dumps(list(key), cls=encoder) if isinstance(key, (list, tuple)) else str(key)


def history_query(
    api: str,
    table: str | None,
    key: Any,
    context_id: UUID | str | None,
    since: datetime | None,
    until: datetime | None,
    last: int | None,
    encoder: type[json.JSONEncoder] | None = None,
) -> tuple[str, list[Any]]:
    """The history_events() query and its parameters; its columns are named
    after Event's fields (shared by history() and history_track.django.events())."""
    return (
        (
            "SELECT table_name::text AS table_name, pgh_id AS id, pgh_created_at AS created_at, pgh_label AS label,"
            " pgh_operation AS operation, pgh_obj_id AS obj_id, pgh_context_id AS context_id,"
            " pgh_context AS context, data, diff"
            f" FROM {api}.history_events(%s::regclass, %s::text, %s::uuid, %s::timestamptz, %s::timestamptz, %s::int4)"
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
    with _cursor(conn, class_row(Event)) as cur:
        events = cur.execute(*history_query(api_schema(conn), table, key, context_id, since, until, last)).fetchall()
    if table is None:
        events.sort(key=lambda e: (e.created_at, e.table_name, e.id))
        if last is not None:
            events = events[-last:] if last > 0 else []
    return events


def as_of(conn: psycopg.Connection[Any], table: str, ts: datetime, *, key: Any = None) -> list[dict[str, Any]]:
    """SELECT * FROM history_as_of(NULL::table, ts): the table's rows as they
    were at ``ts`` (or the one row with ``key``), as dicts, in key order."""
    rel = sql.SQL(_value(conn, "SELECT %s::regclass::text", [table]))
    with _cursor(conn, dict_row) as cur:
        return cur.execute(
            sql.SQL(
                "SELECT * FROM history_track._history_as_of(NULL::{}, %s::timestamptz, %s::text) ORDER BY 1"
            ).format(rel),
            [ts, None if key is None else key_text(key)],
        ).fetchall()


def revert_row_query(
    api: str,
    table: str,
    key: Any = None,
    ts: datetime | None = None,
    event: int | None = None,
    encoder: type[json.JSONEncoder] | None = None,
) -> tuple[str, list[Any]]:
    """The revert_row() call and its parameters: to what event ``event``
    recorded, or else to the row ``key``'s state at ``ts`` (shared by
    revert_row() and history_track.django.revert())."""
    if event is not None:
        return f"SELECT {api}.revert_row(%s::regclass, %s::bigint)", [table, event]
    return f"SELECT {api}.revert_row(%s::regclass, %s::text, %s::timestamptz)", [table, key_text(key, encoder), ts]


def revert_row(
    conn: psycopg.Connection[Any], table: str, key: Any = None, ts: datetime | None = None, *, event: int | None = None
) -> int:
    """Restore one row to its state at ``ts`` (by ``key``), or to the state
    event ``event`` recorded; returns the number of rows written."""
    return int(_value(conn, *revert_row_query(api_schema(conn), table, key, ts, event)))


def revert_table(conn: psycopg.Connection[Any], table: str, ts: datetime) -> int:
    """Restore a whole table to its state at ``ts``; returns the number of rows written."""
    return int(_value(conn, f"SELECT {api_schema(conn)}.revert_table(%s::regclass, %s::timestamptz)", [table, ts]))


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
    with _cursor(conn, class_row(ContextEvent)) as cur:
        return cur.execute(
            "SELECT table_name::text AS table_name, event_table::text AS event_table, pgh_id AS id,"
            " pgh_created_at AS created_at, pgh_label AS label, pgh_operation AS operation, pgh_obj_id AS obj_id,"
            " pgh_context AS context, data FROM " + api_schema(conn) + ".history_context_events(%s::uuid)",
            [str(context_id)],
        ).fetchall()


def record_event_query(
    api: str, table: str, key: Any, label: str, context: Any, encoder: type[json.JSONEncoder] | None = None
) -> tuple[str, list[Any]]:
    """The record_history_event() call and its parameters; ``context`` is the
    driver's jsonb parameter (or None), as the caller adapts it (shared by
    record_event() and history_track.django.record())."""
    return (
        f"SELECT {api}.record_history_event(%s::regclass, %s::text, %s::text, %s::jsonb)",
        [table, key_text(key, encoder), label, context],
    )


def set_context_query(api: str, payload: str) -> tuple[str, list[Any]]:
    """The set_history_context() call for a JSON object's text: merges it into
    the transaction's context and returns the context id (shared by
    history_track.context() and the CLI's demo)."""
    return f"SELECT {api}.set_history_context(%s::jsonb)", [payload]


def record_event(
    conn: psycopg.Connection[Any], table: str, key: Any, label: str, context: dict[str, Any] | None = None
) -> int:
    """SELECT record_history_event(...): a manual event for one row; returns its pgh_id.
    ``key`` is the primary key's value, or a list for a composite key."""
    return int(
        _value(
            conn,
            *record_event_query(api_schema(conn), table, key, label, Jsonb(context) if context is not None else None),
        )
    )
