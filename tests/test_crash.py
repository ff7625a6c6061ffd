"""Crash safety, shown: SIGKILL the whole server in the middle of a concurrent
write workload, restart it, and find exactly the committed history.

Events are written by the same transaction as the change they record, so
PostgreSQL's crash recovery keeps both or neither; this test checks that it
is so, rather than assuming it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from history_track.install import create_extension
from history_track.server import TemporaryServer

WRITERS = 4


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def test_sigkill_mid_workload_keeps_exactly_the_committed_history(request):
    server = TemporaryServer(pg_config=request.config.getoption("--history-track-pg-config"))
    try:
        with psycopg.connect(server.conninfo("postgres"), autocommit=True) as conn:
            create_extension(conn)
            conn.execute("CREATE TABLE t (id bigint PRIMARY KEY, writer int, n int NOT NULL DEFAULT 0)")
            conn.execute("SELECT track_table('t')")

        committed: list[tuple[int, int]] = []
        rolled_back: list[tuple[int, int]] = []
        in_flight: dict[int, tuple[int, int]] = {}
        stop = threading.Event()

        def writer(w: int) -> None:
            try:
                with psycopg.connect(server.conninfo("postgres"), autocommit=True) as conn:
                    i = 0
                    while not stop.is_set():
                        i += 1
                        in_flight[w] = (w, i)
                        try:
                            with conn.transaction():
                                conn.execute("SELECT set_history_context(%s)", [Jsonb({"w": w, "i": i})])
                                conn.execute("INSERT INTO t (id, writer) VALUES (%s, %s)", [w * 1_000_000 + i, w])
                                conn.execute("UPDATE t SET n = n + 1 WHERE writer = %s AND id %% 7 = %s", [w, i % 7])
                                if i % 5 == 0:
                                    raise _Rollback
                        except _Rollback:
                            rolled_back.append((w, i))
                        else:
                            committed.append((w, i))
                        del in_flight[w]
            except psycopg.OperationalError:
                pass  # the server is gone

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(1, WRITERS + 1)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        assert len(committed) > 20, "the workload did not get going"
        postmaster = server.child_process.pid
        for pid in [postmaster, *_children(postmaster)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        server.child_process.wait()
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads)

        server.child_process = None
        server.start()  # crash recovery replays the WAL
        with psycopg.connect(server.conninfo("postgres"), autocommit=True) as conn:
            recorded = {
                (r[0], r[1]) for r in conn.execute(
                    "SELECT (pgh_context->>'w')::int, (pgh_context->>'i')::int FROM t_event"
                    " WHERE pgh_operation = 'INSERT'").fetchall()}
            rows = {r[0] for r in conn.execute("SELECT id FROM t").fetchall()}
            # Every acknowledged commit has its row and its event ...
            assert set(committed) <= recorded
            assert {w * 1_000_000 + i for w, i in committed} <= rows
            # ... no rolled-back transaction has either ...
            assert not set(rolled_back) & recorded
            assert not {w * 1_000_000 + i for w, i in rolled_back} & rows
            # ... a transaction the crash cut off has both or neither ...
            for w, i in in_flight.values():
                assert ((w, i) in recorded) == (w * 1_000_000 + i in rows)
            # ... and nothing else was recorded.
            assert recorded <= set(committed) | set(in_flight.values())
            # The whole history replays to the table, updates included.
            assert conn.execute("SELECT * FROM history_as_of(NULL::t, now()) ORDER BY id").fetchall() == \
                conn.execute("SELECT * FROM t ORDER BY id").fetchall()
            # And tracking goes on after recovery.
            conn.execute("INSERT INTO t (id, writer) VALUES (0, 0)")
            assert conn.execute("SELECT count(*) FROM t_event WHERE pgh_obj_id = 0").fetchone() == (1,)
        print(f"{len(committed)} committed, {len(rolled_back)} rolled back, {len(in_flight)} cut off by the crash")
    finally:
        server.stop()


class _Rollback(Exception):
    """Raised inside a transaction block to roll it back on purpose."""
