"""The SQL API, wrapped for psycopg 3.

Every function takes an open connection and runs in its current transaction
(commit is the caller's business). Errors are psycopg's own exception classes,
with PostgreSQL's SQLSTATE in ``exc.sqlstate``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Sequence
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb


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
    row = conn.execute(
        "SELECT track_table(%s::regclass, label => %s, operations => %s, condition => %s,"
        " changed => %s, snapshot => %s, columns => %s, exclude => %s, baseline => %s)::text",
        [
            table, label,
            list(operations) if operations is not None else None,
            condition,
            list(changed) if changed is not None else None,
            snapshot,
            list(columns) if columns is not None else None,
            list(exclude) if exclude is not None else None,
            baseline,
        ],
    ).fetchone()
    assert row is not None
    return str(row[0])


def untrack_table(
    conn: psycopg.Connection[Any], table: str, *, label: str | None = None, drop_events: bool = False
) -> None:
    """SELECT untrack_table(...)."""
    conn.execute(
        "SELECT untrack_table(%s::regclass, label => %s, drop_events => %s)",
        [table, label, drop_events],
    )


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
    return [Tracker(*row) for row in conn.execute(query, params).fetchall()]


def key_text(key: Any, encoder: type[json.JSONEncoder] | None = None) -> str:
    """A key as the SQL functions take it: the value, or a JSON array for a
    composite key (its values encoded with ``encoder``)."""
    return json.dumps(list(key), cls=encoder) if isinstance(key, (list, tuple)) else str(key)


def history_query(
    table: str | None, key: Any, context_id: UUID | str | None, since: datetime | None,
    until: datetime | None, last: int | None, encoder: type[json.JSONEncoder] | None = None,
) -> tuple[str, list[Any]]:
    """The history_events() query and its parameters; its rows are Event's
    fields in order (shared by history() and history_track.django.events())."""
    return (
        "SELECT table_name::text, pgh_id, pgh_created_at, pgh_label, pgh_operation, pgh_obj_id,"
        " pgh_context_id, pgh_context, data, diff"
        " FROM history_events(%s::regclass, %s, %s::uuid, %s, %s, %s)",
        [table, None if key is None else key_text(key, encoder), None if context_id is None else str(context_id),
         since, until, last],
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
    followed back through key changes; with ``last``, only the last N events
    (of each table)."""
    return [Event(*row) for row in conn.execute(*history_query(table, key, context_id, since, until, last)).fetchall()]


def as_of(conn: psycopg.Connection[Any], table: str, ts: datetime, *, key: Any = None) -> list[dict[str, Any]]:
    """SELECT * FROM history_as_of(NULL::table, ts): the table's rows as they
    were at ``ts`` (or the one row with ``key``), as dicts, in key order."""
    rel = sql.SQL(conn.execute("SELECT %s::regclass::text", [table]).fetchone()[0])  # type: ignore[index]
    cur = conn.execute(
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
        row = conn.execute("SELECT revert_row(%s::regclass, %s::bigint)", [table, event]).fetchone()
    else:
        row = conn.execute("SELECT revert_row(%s::regclass, %s::text, %s)", [table, key_text(key), ts]).fetchone()
    assert row is not None
    return int(row[0])


def revert_table(conn: psycopg.Connection[Any], table: str, ts: datetime) -> int:
    """Restore a whole table to its state at ``ts``; returns the number of rows written."""
    row = conn.execute("SELECT revert_table(%s::regclass, %s)", [table, ts]).fetchone()
    assert row is not None
    return int(row[0])


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
    return [
        ContextEvent(*row)
        for row in conn.execute(
            "SELECT table_name::text, event_table::text, pgh_id, pgh_created_at, pgh_label, pgh_operation,"
            " pgh_obj_id, pgh_context, data FROM history_context_events(%s)",
            [str(context_id)],
        ).fetchall()
    ]


def record_event(
    conn: psycopg.Connection[Any], table: str, key: Any, label: str, context: dict[str, Any] | None = None
) -> int:
    """SELECT record_history_event(...): a manual event for one row; returns its pgh_id.
    ``key`` is the primary key's value, or a list for a composite key."""
    row = conn.execute(
        "SELECT record_history_event(%s::regclass, %s::text, %s, %s)",
        [table, key_text(key), label, Jsonb(context) if context is not None else None],
    ).fetchone()
    assert row is not None
    return int(row[0])
