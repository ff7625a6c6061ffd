"""Tamper evidence: a hash chain over a table's events, and verify_history()
finding the first broken link after a superuser rewrites history."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from conftest import rows


def verify(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    return conn.execute("SELECT verified, first_broken_link, pgh_id, problem FROM verify_history('acct')").fetchone()


@pytest.fixture
def chained(conn):
    conn.execute("CREATE TABLE acct (id int PRIMARY KEY, bal numeric, note text)")
    conn.execute("SELECT track_table('acct')")
    conn.execute("INSERT INTO acct VALUES (1, 10, 'before the chain')")   # not linked
    conn.execute("SELECT start_hash_chain('acct')")
    conn.execute("INSERT INTO acct SELECT g, g, 'x' FROM generate_series(2, 200) g")
    conn.execute("UPDATE acct SET bal = bal + 1 WHERE id % 3 = 0")
    conn.execute("SELECT record_history_event('acct', 5, 'audited')")
    conn.execute("DELETE FROM acct WHERE id = 4")
    return conn


def test_the_chain_holds_through_ordinary_life(chained):
    conn = chained
    events = conn.execute("SELECT count(*) FROM acct_event WHERE pgh_id > 1").fetchone()[0]
    assert verify(conn) == (events, None, None, None)
    # Renamed and added columns, reverts, pruning: still whole.
    conn.execute("ALTER TABLE acct RENAME COLUMN note TO memo")
    conn.execute("ALTER TABLE acct ADD COLUMN extra int")
    conn.execute("UPDATE acct SET extra = 1, memo = 'y' WHERE id = 7")
    conn.execute("SELECT revert_row('acct', 7, (SELECT pgh_created_at FROM acct_event WHERE pgh_id = 2))")
    assert verify(conn)[1:] == (None, None, None)
    cut = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    conn.execute("UPDATE acct SET bal = 0 WHERE id = 2")
    conn.execute("SELECT prune_history('acct', %s)", [cut])
    assert verify(conn) == (1, None, None, None)   # verified from the pruning anchor on
    assert conn.execute("SELECT start_hash_chain('acct')").fetchone() == ("",)  # already: a notice, nothing else
    # The last hash, to keep outside the database, is the chain's head.
    assert conn.execute("SELECT last_hash = encode(hash, 'hex') FROM verify_history('acct'),"
                        " history_track.chain").fetchone() == (True,)


TAMPERING = [
    ("UPDATE acct_event SET bal = 999 WHERE pgh_id = 50", 49, 50, "event 50 was changed (or link 49 was)"),
    ("UPDATE acct_event SET pgh_context = '{\"user\": \"nobody\"}' WHERE pgh_id = 120", 119, 120,
     "event 120 was changed (or link 119 was)"),
    ("DELETE FROM acct_event WHERE pgh_id = 70", 69, 70, "event 70 was deleted"),
    ("DELETE FROM history_track.chain_link WHERE seq = 30", 30, None, "link 30 is missing"),
    ("UPDATE history_track.chain_link SET hash = sha256('x') WHERE seq = 10", 10, 11, "event 11 was changed (or link 10 was)"),
    ("DELETE FROM history_track.chain_link WHERE seq > 250", 251, None, "links 251 to 267 are missing"),
    ("ALTER TABLE acct_event DISABLE TRIGGER history_track_chain;"
     " INSERT INTO acct_event (pgh_created_at, pgh_label, pgh_operation, pgh_obj_id, id) VALUES (now(), 'insert', 'INSERT', 77, 77)",
     None, 269, "event 269 is not in the chain"),
]


@pytest.mark.parametrize("tamper,link,pgh_id,problem", TAMPERING, ids=[t[3] for t in TAMPERING])
def test_a_superuser_rewriting_history_is_found(chained, tamper, link, pgh_id, problem):
    conn = chained
    # 199 inserts, 66 updates, a manual event and a delete: links 1..267 for events 2..268.
    assert conn.execute("SELECT seq FROM history_track.chain").fetchone() == (267,)
    conn.execute("ALTER TABLE acct_event DISABLE TRIGGER history_track_append_only")  # a superuser can
    conn.execute(tamper)
    got = verify(conn)
    assert got[1:] == (link, pgh_id, problem)
    assert got[0] == (267 if link is None else link - 1)


def test_concurrent_writers_build_one_chain(conn, history_track_dsn):
    conn.execute("CREATE TABLE acct (id int PRIMARY KEY, bal numeric, note text)")
    conn.execute("SELECT track_table('acct')")
    conn.execute("SELECT start_hash_chain('acct')")

    def writer(w: int) -> None:
        with psycopg.connect(history_track_dsn, autocommit=True) as c:
            for i in range(50):
                with c.transaction():
                    c.execute("INSERT INTO acct VALUES (%s, %s, 'w')", [w * 1000 + i, i])
                    c.execute("UPDATE acct SET bal = bal + 1 WHERE id = %s", [w * 1000 + i])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verify(conn) == (400, None, None, None)
    assert rows(conn, "SELECT count(*) FROM history_track.chain_link l JOIN acct_event e USING (pgh_id)") == [(400,)]


def test_chain_refusals(conn, history_track_dsn):
    conn.execute("CREATE TABLE acct (id int PRIMARY KEY, bal numeric)")
    conn.execute("SELECT track_table('acct')")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as info:
        conn.execute("SELECT * FROM verify_history('acct')")
    assert info.value.diag.message_hint.startswith("Start one with SELECT start_hash_chain(")
    conn.execute("CREATE TABLE plain (id int PRIMARY KEY)")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        conn.execute("SELECT start_hash_chain('plain')")
    conn.execute("SELECT start_hash_chain('acct')")
    with pytest.raises(psycopg.errors.FeatureNotSupported):
        conn.execute("ALTER TABLE acct ALTER COLUMN bal TYPE numeric(20,4)")
    conn.execute("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'htc_other') THEN"
                 " CREATE ROLE htc_other LOGIN; END IF; END $$")
    try:
        with psycopg.connect(history_track_dsn + " user=htc_other", autocommit=True) as other:
            for stmt in ["SELECT start_hash_chain('acct')", "SELECT * FROM verify_history('acct')"]:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    other.execute(stmt)
    finally:
        conn.execute("DROP OWNED BY htc_other; DROP ROLE htc_other")
    # Dropping the history drops its chain.
    conn.execute("SELECT untrack_table('acct', drop_events => true)")
    assert rows(conn, "SELECT count(*) FROM history_track.chain") == [(0,)]


def test_the_chain_does_not_depend_on_the_settings_of_who_writes_or_verifies(chained, history_track_dsn):
    """A link hashes the event's JSON, whose form of a timestamptz follows
    TimeZone (of a numeric, an interval, extra_float_digits and the like): a
    writer's SET would break the chain for good, a verifier's report it broken."""
    conn = chained
    with psycopg.connect(history_track_dsn, autocommit=True) as writer:
        writer.execute("SET TimeZone = 'Asia/Tokyo'; SET DateStyle = 'SQL, DMY'; SET extra_float_digits = -3;"
                       " INSERT INTO acct VALUES (500, 1.5, 'from Tokyo')")
    events = conn.execute("SELECT count(*) FROM acct_event WHERE pgh_id > 1").fetchone()[0]
    for zone in ("UTC", "America/New_York"):
        conn.execute(f"SET TimeZone = '{zone}'; SET IntervalStyle = 'sql_standard'")
        assert verify(conn) == (events, None, None, None)


def test_pruning_follows_the_order_the_replay_follows(conn, history_track_dsn):
    """An event's time is its transaction's start: a DELETE recorded by a
    transaction that began before the INSERT it undoes carries the earlier
    time. Pruning between the two keeps both, so the replay still ends on
    the row deleted."""
    conn.execute("CREATE TABLE acct (id int PRIMARY KEY, bal numeric)")
    conn.execute("SELECT track_table('acct')")
    with psycopg.connect(history_track_dsn) as early, psycopg.connect(history_track_dsn, autocommit=True) as late:
        started = early.execute("SELECT now()").fetchone()[0]   # (its transaction starts)
        late.execute("SELECT pg_sleep(0.2)")
        late.execute("INSERT INTO acct VALUES (1, 10)")
        early.execute("DELETE FROM acct WHERE id = 1")
        early.commit()
    assert rows(conn, "SELECT pgh_operation, pgh_created_at > %s FROM acct_event ORDER BY pgh_id", [started]) == [
        ("INSERT", True), ("DELETE", False)]
    conn.execute("SELECT prune_history('acct', %s::timestamptz + interval '0.1 s')", [started])
    assert rows(conn, "SELECT pgh_operation FROM acct_event ORDER BY pgh_id") == [("INSERT",), ("DELETE",)]
    assert rows(conn, "SELECT count(*) FROM history_as_of(NULL::acct, now())") == [(0,)]
