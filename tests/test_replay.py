"""Replay is exact: history_as_of() at every checkpoint equals the table as it was.

A random workload (hypothesis), on an ordinary table, one with a DEFERRABLE key
(so keys can swap inside a statement) and a hash-partitioned one (so rows move
between partitions), of multi-row statements, upserts, deletes and
re-inserts of the same key, key changes (to free keys, shifts, swaps and
rotations inside one statement), no-op updates, rolled-back transactions,
NULLs, arrays and jsonb, with a snapshot of the table taken after every
transaction. Then every snapshot is compared with history_as_of() at its
moment, and revert_table() to a random checkpoint must give that snapshot back.
"""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import rows

COLUMNS = "id, v, s, a, j"
VALUES = st.tuples(
    st.one_of(st.none(), st.integers(-5, 5)),
    st.one_of(st.none(), st.sampled_from(["", "x", "O'Reilly", "ünï", "a\tb"])),
    st.one_of(st.none(), st.lists(st.one_of(st.none(), st.integers(0, 3)), max_size=3)),
    st.one_of(st.none(), st.sampled_from([{}, {"k": 1}, {"k": [1, None]}, [1, "x"], "s", 0, None])),
)


def _setup(conn: psycopg.Connection[Any], variant: str) -> None:
    conn.execute("SELECT untrack_table(t, drop_events => true) FROM (SELECT to_regclass('t') AS t) s WHERE t IS NOT NULL")
    conn.execute("DROP TABLE IF EXISTS t")
    if variant == "partitions":
        # Rows move between partitions when their key changes.
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v int, s text, a int[], j jsonb) PARTITION BY HASH (id)")
        for i in range(3):
            conn.execute(f"CREATE TABLE t_{i} PARTITION OF t FOR VALUES WITH (MODULUS 3, REMAINDER {i})")
    else:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY %s, v int, s text, a int[], j jsonb)"
                     % ("DEFERRABLE" if variant == "swaps" else ""))
    conn.execute("SELECT track_table('t')")


def _snapshot(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return rows(conn, f"SELECT {COLUMNS} FROM t ORDER BY id")


def _row(key: int, value: tuple[Any, ...]) -> tuple[Any, ...]:
    v, s, a, j = value
    return (key, v, s, a, json.dumps(j))  # None becomes the JSON null, not SQL NULL


def _statement(draw: Any, conn: psycopg.Connection[Any], variant: str) -> None:
    deferrable = variant == "swaps"
    keys = [r[0] for r in rows(conn, "SELECT id FROM t ORDER BY id")]
    free = [k for k in range(1, 40) if k not in keys]
    kind = draw(st.sampled_from(
        ["insert", "upsert", "update", "noop", "delete", "move", "shift", "reinsert", "swap", "rotate"]))
    some = (lambda: draw(st.lists(st.sampled_from(keys), min_size=1, max_size=4, unique=True))) if keys else None
    if kind == "insert" and free:
        new = draw(st.lists(st.sampled_from(free), min_size=1, max_size=4, unique=True))
        params = [x for k in new for x in _row(k, draw(VALUES))]
        conn.execute(f"INSERT INTO t ({COLUMNS}) VALUES " + ", ".join(["(%s, %s, %s, %s, %s)"] * len(new)), params)
    elif kind == "upsert" and not deferrable:
        target = draw(st.lists(st.sampled_from(keys + free[:5]), min_size=1, max_size=4, unique=True))
        params = [x for k in target for x in _row(k, draw(VALUES))]
        # (ON CONFLICT DO UPDATE cannot move a row to another partition.)
        move = variant != "partitions" and draw(st.booleans()) \
            and all(k + 100 not in keys + target for k in keys + target)
        conn.execute(
            f"INSERT INTO t ({COLUMNS}) VALUES " + ", ".join(["(%s, %s, %s, %s, %s)"] * len(target))
            + " ON CONFLICT (id) DO UPDATE SET v = excluded.v, s = excluded.s, a = excluded.a, j = excluded.j"
            + (", id = t.id + 100" if move else ""), params)
    elif kind == "update" and keys:
        v, s, a, j = draw(VALUES)
        conn.execute("UPDATE t SET v = %s, s = %s, a = %s, j = %s WHERE id = ANY(%s)",
                     [v, s, a, None if j is None else json.dumps(j), some()])  # type: ignore[misc]
    elif kind == "noop" and keys:
        conn.execute("UPDATE t SET v = v, j = j WHERE id = ANY(%s)", [some()])  # type: ignore[misc]
    elif kind == "delete" and keys:
        conn.execute("DELETE FROM t WHERE id = ANY(%s)", [some()])  # type: ignore[misc]
    elif kind == "move" and keys and free:
        conn.execute("UPDATE t SET id = %s, v = coalesce(v, 0) + 1 WHERE id = %s",
                     [draw(st.sampled_from(free)), draw(st.sampled_from(keys))])
    elif kind == "shift" and keys:
        if deferrable:  # every key one up, in one statement
            conn.execute("UPDATE t SET id = id + 1")
        else:  # a few keys to free keys
            movable = [k for k in some() if k + 200 not in keys]  # type: ignore[misc]
            conn.execute("UPDATE t SET id = id + 200 WHERE id = ANY(%s)", [movable])
    elif kind == "reinsert" and keys:
        k = draw(st.sampled_from(keys))
        with conn.transaction():
            conn.execute("DELETE FROM t WHERE id = %s", [k])
            conn.execute(f"INSERT INTO t ({COLUMNS}) VALUES (%s, %s, %s, %s, %s)", _row(k, draw(VALUES)))
    elif kind in ("swap", "rotate") and deferrable and len(keys) >= 3:
        x, y, z = draw(st.lists(st.sampled_from(keys), min_size=3, max_size=3, unique=True))
        if kind == "swap":
            conn.execute("UPDATE t SET id = CASE id WHEN %s THEN %s ELSE %s END, s = 'swapped' WHERE id IN (%s, %s)",
                         [x, y, x, x, y])
        else:
            conn.execute("UPDATE t SET id = CASE id WHEN %s THEN %s WHEN %s THEN %s ELSE %s END WHERE id IN (%s, %s, %s)",
                         [x, y, y, z, x, x, y, z])


@pytest.mark.parametrize("variant", ["upserts", "swaps", "partitions"])
def test_history_as_of_replays_every_checkpoint_exactly(conn, variant):
    # Each example drops and re-creates t. A prepared statement keeps the row
    # type NULL::t had when it was prepared (PostgreSQL records no dependency
    # on it), so psycopg must not prepare these queries.
    conn.prepare_threshold = None
    # Reproducible (derandomize), and no shrinking: a failure prints its
    # example as drawn, instead of spending minutes against the server.
    @settings(max_examples=40, deadline=None, derandomize=True,
              phases=[Phase.explicit, Phase.reuse, Phase.generate],
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.data())
    def run(data: Any) -> None:
        _setup(conn, variant)
        start = data.draw(st.lists(st.integers(1, 12), min_size=3, max_size=8, unique=True))
        conn.execute(f"INSERT INTO t ({COLUMNS}) VALUES " + ", ".join(["(%s, %s, %s, %s, %s)"] * len(start)),
                     [x for k in start for x in _row(k, data.draw(VALUES))])
        checkpoints: list[tuple[Any, list[tuple[Any, ...]]]] = []
        for _ in range(data.draw(st.integers(3, 14))):
            if data.draw(st.integers(0, 9)) == 0:  # a transaction that rolls back leaves no trace
                with pytest.raises(psycopg.errors.RaiseException):
                    with conn.transaction():
                        _statement(data.draw, conn, variant)
                        conn.execute("DO $$ BEGIN RAISE EXCEPTION 'roll back'; END $$")
            else:
                with conn.transaction():
                    for _ in range(data.draw(st.integers(1, 2))):
                        _statement(data.draw, conn, variant)
            at = conn.execute("SELECT clock_timestamp()").fetchone()[0]
            checkpoints.append((at, _snapshot(conn)))
            time.sleep(0.002)  # the next transaction starts strictly after this moment
        for at, snapshot in checkpoints:
            assert rows(conn, f"SELECT {COLUMNS} FROM history_as_of(NULL::t, %s) ORDER BY id", [at]) == snapshot
            for key_row in snapshot[:3]:  # one row's replay agrees
                assert rows(conn, f"SELECT {COLUMNS} FROM history_as_of(NULL::t, %s, key => %s)",
                            [at, str(key_row[0])]) == [key_row]
        assert rows(conn, f"SELECT {COLUMNS} FROM history_as_of(NULL::t, now()) ORDER BY id") == _snapshot(conn)

        # Revert to a checkpoint: the table is that snapshot again, and the
        # revert is itself history that replays.
        at, snapshot = checkpoints[data.draw(st.integers(0, len(checkpoints) - 1))]
        last = conn.execute("SELECT coalesce(max(pgh_id), 0) FROM t_event").fetchone()[0]
        conn.execute("SELECT revert_table('t', %s)", [at])
        assert _snapshot(conn) == snapshot
        assert rows(conn, f"SELECT {COLUMNS} FROM history_as_of(NULL::t, now()) ORDER BY id") == snapshot
        # Everything the revert wrote is labeled revert.
        assert rows(conn, "SELECT DISTINCT pgh_label FROM t_event WHERE pgh_id > %s", [last]) \
            == ([] if snapshot == checkpoints[-1][1] else [("revert",)])

    run()
