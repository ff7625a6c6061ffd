"""The Python API's reading functions: numbers come back exactly, and only the
cursors the API opens decode them that way."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import history_track
import psycopg
from history_track import render
from psycopg.rows import dict_row


def _orders(conn: psycopg.Connection[Any]) -> datetime:
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, amount numeric(10,2), extra jsonb)")
    conn.execute("SELECT track_table('orders')")
    conn.execute("""INSERT INTO orders VALUES (1, 12.50, '{"rate": 0.10}')""")
    before = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
    with history_track.context(conn, ratio=0.5):
        conn.execute("UPDATE orders SET amount = 10.10")
    return before


def test_numbers_in_data_diff_and_as_of_are_exact_decimals(conn):
    before = _orders(conn)
    insert, update = history_track.history(conn, "orders", key=1)
    assert repr(insert.data["amount"]) == "Decimal('12.50')"
    assert repr(insert.data["extra"]) == "{'rate': Decimal('0.10')}"
    assert repr(update.diff) == "{'amount': [Decimal('12.50'), Decimal('10.10')]}"
    assert repr(update.context) == "{'ratio': Decimal('0.5')}"
    assert insert.data["id"] == 1 and isinstance(insert.data["id"], int)
    assert repr(history_track.as_of(conn, "orders", before)) == \
        "[{'id': 1, 'amount': Decimal('12.50'), 'extra': {'rate': Decimal('0.10')}}]"
    (event,) = history_track.context_events(conn, update.context_id)
    assert repr(event.data["amount"]) == "Decimal('10.10')"


def test_the_connections_own_loaders_are_left_alone(conn):
    _orders(conn)
    history_track.history(conn, "orders")
    value = conn.execute("""SELECT '{"a": 1.50}'::jsonb""").fetchone()[0]  # type: ignore[index]
    assert value == {"a": 1.5} and isinstance(value["a"], float)


def test_a_connection_with_another_row_factory(history_track_dsn):
    with psycopg.connect(history_track_dsn, autocommit=True, row_factory=dict_row) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        conn.execute("SELECT track_table('t')")
        conn.execute("INSERT INTO t VALUES (7)")
        assert [(e.operation, e.obj_id) for e in history_track.history(conn, "t")] == [("INSERT", 7)]
        assert history_track.as_of(conn, "t", datetime.now().astimezone()) == [{"id": 7}]


def test_json_output_writes_numbers_as_stored(conn):
    _orders(conn)
    text = render.as_json(history_track.history(conn, "orders"))
    assert '"amount": 12.50' in text and '"amount": [\n        12.50,\n        10.10\n      ]' in text
    assert json.loads(text, parse_float=Decimal)[1]["diff"] == {"amount": [Decimal("12.50"), Decimal("10.10")]}
