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
    """One event row: the pgh_* columns, and the mirrored columns in ``data``."""

    id: int
    created_at: datetime
    label: str
    operation: str
    obj_id: Any
    context_id: UUID | None
    context: dict[str, Any] | None
    data: dict[str, Any] = field(default_factory=dict)


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
) -> str:
    """SELECT track_table(...): returns the event table's name.

    ``table`` is resolved like a regclass literal: ``'orders'``,
    ``'sales.orders'``, ``'"Mixed Case"'``.
    """
    row = conn.execute(
        "SELECT track_table(%s::regclass, label => %s, operations => %s, condition => %s,"
        " changed => %s, snapshot => %s, columns => %s, exclude => %s)::text",
        [
            table, label,
            list(operations) if operations is not None else None,
            condition,
            list(changed) if changed is not None else None,
            snapshot,
            list(columns) if columns is not None else None,
            list(exclude) if exclude is not None else None,
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


def events(conn: psycopg.Connection[Any], event_table: str, *, limit: int | None = None) -> list[Event]:
    """The events of an event table, oldest first (the last ``limit`` ones if given)."""
    row = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.oid = %s::regclass",
        [event_table],
    ).fetchone()
    assert row is not None
    query = sql.SQL(
        "SELECT * FROM (SELECT e.pgh_id, e.pgh_created_at, e.pgh_label, e.pgh_operation, e.pgh_obj_id,"
        " e.pgh_context_id, e.pgh_context,"
        " to_jsonb(e) - '{{pgh_id,pgh_created_at,pgh_label,pgh_operation,pgh_obj_id,pgh_context_id,pgh_context}}'::text[]"
        " FROM {} AS e ORDER BY e.pgh_id DESC {}) AS last ORDER BY pgh_id"
    ).format(
        sql.Identifier(row[0], row[1]),
        sql.SQL("LIMIT {}").format(sql.Literal(limit)) if limit is not None else sql.SQL(""),
    )
    return [Event(*r) for r in conn.execute(query).fetchall()]


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
    key_text = json.dumps(list(key)) if isinstance(key, (list, tuple)) else str(key)
    row = conn.execute(
        "SELECT record_history_event(%s::regclass, %s::text, %s, %s)",
        [table, key_text, label, Jsonb(context) if context is not None else None],
    ).fetchone()
    assert row is not None
    return int(row[0])
