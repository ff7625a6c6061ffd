"""Concurrent writers and concurrent tracking."""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from conftest import rows


def run_threads(target: Any, count: int) -> list[BaseException]:
    errors: list[BaseException] = []

    def wrapped(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def test_concurrent_writers_every_committed_change_has_its_event(conn, history_track_dsn):
    conn.execute("CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)")
    conn.execute("SELECT track_table('counters')")
    conn.execute("INSERT INTO counters SELECT g, 0 FROM generate_series(1, 10) g")
    per_thread = 60

    def writer(i: int) -> None:
        with psycopg.connect(history_track_dsn, autocommit=True) as c:
            for k in range(per_thread):
                try:
                    with c.transaction():
                        # Everyone updates the same few rows: row locks serialise them.
                        c.execute("UPDATE counters SET n = n + 1 WHERE id = %s", [(i + k) % 10 + 1])
                        if k % 7 == 0:
                            raise RuntimeError("roll back")
                except RuntimeError:
                    pass

    assert run_threads(writer, 4) == []
    committed = sum(1 for k in range(per_thread) if k % 7 != 0) * 4
    assert rows(conn, "SELECT sum(n) FROM counters") == [(committed,)]
    assert rows(conn, "SELECT count(*) FROM counters_event WHERE pgh_operation = 'UPDATE'") == [(committed,)]
    # Per row, the recorded values step 1, 2, 3, ... in pgh_id order: no event lost or misordered.
    gaps = rows(conn, """
        SELECT count(*) FROM (
            SELECT n, row_number() OVER (PARTITION BY pgh_obj_id ORDER BY pgh_id) AS k
              FROM counters_event WHERE pgh_operation = 'UPDATE') s
         WHERE n <> k""")
    assert gaps == [(0,)]


def test_concurrent_track_table_calls_serialise(conn, history_track_dsn):
    conn.execute("CREATE TABLE shared (id int PRIMARY KEY)")
    for i in range(4):
        conn.execute(f"CREATE TABLE own_{i} (id int PRIMARY KEY)")
    barrier = threading.Barrier(8)

    def tracker(i: int) -> None:
        with psycopg.connect(history_track_dsn, autocommit=True) as c:
            barrier.wait()
            table = "shared" if i % 2 == 0 else f"own_{i // 2}"
            c.execute("SELECT track_table(%s::regclass)", [table])

    assert run_threads(tracker, 8) == []
    assert rows(conn, "SELECT table_name::text, count(*) FROM history_trackers GROUP BY 1 ORDER BY 1") == [
        ("own_0", 3), ("own_1", 3), ("own_2", 3), ("own_3", 3), ("shared", 3)]
    conn.execute("INSERT INTO shared VALUES (1)")
    assert rows(conn, "SELECT pgh_operation, id FROM shared_event") == [("INSERT", 1)]
