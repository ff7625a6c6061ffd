"""Reading history: object history with diffs, the all-events function,
history_as_of, revert and baseline, beyond the pg_regress story (10_reading):
who may read, composite keys, labeled trackers' diffs, untracked gaps."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterator

import psycopg
import pytest

from conftest import rows


@pytest.fixture
def roles(conn: psycopg.Connection[Any], history_track_dsn: str) -> Iterator[dict[str, psycopg.Connection[Any]]]:
    """orders owned by htr_owner and tracked; htr_app may write it, nothing more."""
    conn.execute("""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'htr_app') THEN CREATE ROLE htr_app LOGIN; END IF;
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'htr_owner') THEN CREATE ROLE htr_owner LOGIN; END IF;
        END $$;
        GRANT CREATE ON SCHEMA public TO htr_owner;
        SET ROLE htr_owner;
        CREATE TABLE public.orders (id int PRIMARY KEY, status text);
        GRANT SELECT, INSERT, UPDATE, DELETE ON public.orders TO htr_app;
        SELECT track_table('public.orders');
        RESET ROLE;
    """)
    with psycopg.connect(history_track_dsn + " user=htr_app", autocommit=True) as app, \
            psycopg.connect(history_track_dsn + " user=htr_owner", autocommit=True) as owner:
        yield {"app": app, "owner": owner}
    conn.execute("DROP OWNED BY htr_app, htr_owner CASCADE; DROP ROLE htr_app, htr_owner")


def test_history_is_read_only_by_roles_allowed_to_select_it(conn, roles):
    app, owner = roles["app"], roles["owner"]
    app.execute("INSERT INTO orders VALUES (1, 'new')")
    app.execute("UPDATE orders SET status = 'paid'")
    for stmt in ["SELECT * FROM history_as_of(NULL::orders, now())",
                 "SELECT * FROM history_events('orders', key => '1')",
                 "SELECT revert_table('orders', now())",
                 "SELECT revert_row('orders', 1, now())",
                 "SELECT revert_row('orders', 1::bigint)"]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
            app.execute(stmt)
        assert "orders_event" in (info.value.diag.message_detail or ""), stmt
    # Across tables, the ones the caller may not read are left out.
    assert rows(app, "SELECT count(*) FROM history_events()") == [(0,)]
    # The owner reads, and reverts as itself.
    assert rows(owner, "SELECT pgh_operation, diff FROM history_events('orders', key => '1')") == [
        ("INSERT", {"id": [None, 1], "status": [None, "new"]}),
        ("UPDATE", {"status": ["new", "paid"]}),
    ]
    assert rows(owner, "SELECT * FROM history_as_of(NULL::orders, now())") == [(1, "paid")]
    # Granting SELECT on the event table is how a reader is let in.
    owner.execute("GRANT SELECT ON orders_event TO htr_app")
    assert rows(app, "SELECT count(*) FROM history_events()") == [(2,)]
    # Revert writes with the caller's privileges: a reader without DELETE cannot.
    owner.execute("REVOKE DELETE ON orders FROM htr_app")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute("SELECT revert_table('orders', '2000-01-01')")
    assert rows(conn, "SELECT * FROM orders") == [(1, "paid")]


def test_composite_keys_and_key_changes(conn):
    conn.execute("CREATE TABLE lines (doc text, n int, body text, PRIMARY KEY (doc, n))")
    conn.execute("SELECT track_table('lines')")
    conn.execute("INSERT INTO lines VALUES ('a', 1, 'one'), ('a', 2, 'two')")
    conn.execute("UPDATE lines SET n = n + 10")  # both keys change in one statement
    conn.execute("UPDATE lines SET body = 'ONE' WHERE n = 11")
    assert rows(conn, "SELECT pgh_operation, pgh_obj_id, diff FROM history_events('lines', key => '[\"a\", 11]')") == [
        ("INSERT", ["a", 1], {"doc": [None, "a"], "n": [None, 1], "body": [None, "one"]}),
        ("UPDATE", ["a", 11], {"n": [1, 11]}),
        ("UPDATE", ["a", 11], {"body": ["one", "ONE"]}),
    ]
    assert rows(conn, "SELECT * FROM history_as_of(NULL::lines, now(), key => '[\"a\", 12]')") == [("a", 12, "two")]
    assert rows(conn, "SELECT * FROM history_as_of(NULL::lines, now(), key => '[\"a\", 2]')") == []
    conn.execute("SELECT revert_row('lines', '[\"a\", 11]', (SELECT min(pgh_created_at) FROM lines_event))")
    assert rows(conn, "SELECT * FROM lines ORDER BY n") == [("a", 12, "two")]  # ["a", 11] did not exist then


def test_labeled_events_diff_against_the_state_before_their_statement(conn):
    conn.execute("CREATE TABLE acct (id int PRIMARY KEY, balance numeric, status text)")
    conn.execute("SELECT track_table('acct')")
    conn.execute("SELECT track_table('acct', label => 'overdrawn', operations => '{update}',"
                 " condition => 'NEW.balance < 0 AND OLD.balance >= 0')")
    conn.execute("SELECT track_table('acct', label => 'before_close', operations => '{update}', snapshot => 'old',"
                 " condition => $$NEW.status = 'closed'$$)")
    conn.execute("INSERT INTO acct VALUES (1, 10, 'open')")
    conn.execute("UPDATE acct SET balance = -5")
    conn.execute("UPDATE acct SET status = 'closed'")
    conn.execute("SELECT record_history_event('acct', 1, 'audited')")
    assert rows(conn, "SELECT pgh_label, pgh_operation, diff FROM history_events('acct', key => '1')") == [
        ("insert", "INSERT", {"id": [None, 1], "balance": [None, 10], "status": [None, "open"]}),
        ("overdrawn", "UPDATE", {"balance": [10, -5]}),
        ("update", "UPDATE", {"balance": [10, -5]}),
        ("before_close", "UPDATE", None),  # it stores the old row: no diff of its own
        ("update", "UPDATE", {"status": ["open", "closed"]}),
        ("audited", "MANUAL", {}),
    ]
    # Replay skips labeled and manual events.
    assert rows(conn, "SELECT * FROM history_as_of(NULL::acct, now())") == [(1, Decimal(-5), "closed")]


def test_baseline_after_an_untracked_gap_makes_replay_whole_again(conn):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    conn.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    conn.execute("SELECT track_table('t')")
    # Without a baseline, rows written before tracking are not in the replay.
    assert rows(conn, "SELECT * FROM history_as_of(NULL::t, now())") == []
    conn.execute("SELECT track_table('t', baseline => true)")
    assert rows(conn, "SELECT * FROM history_as_of(NULL::t, now()) ORDER BY id") == [(1, "a"), (2, "b"), (3, "c")]
    conn.execute("SELECT untrack_table('t')")
    conn.execute("DELETE FROM t WHERE id = 1")  # not recorded
    conn.execute("UPDATE t SET v = 'B' WHERE id = 2")  # not recorded
    conn.execute("INSERT INTO t VALUES (4, 'd')")  # not recorded
    conn.execute("SELECT track_table('t', baseline => true)")
    assert rows(conn, "SELECT * FROM history_as_of(NULL::t, now()) ORDER BY id") == rows(conn, "SELECT * FROM t ORDER BY id")
    assert rows(conn, "SELECT pgh_label, pgh_operation, pgh_obj_id FROM t_event"
                      " WHERE pgh_id > 3 ORDER BY pgh_operation, pgh_obj_id") == [
        ("baseline", "BASELINE", 2), ("baseline", "BASELINE", 3), ("baseline", "BASELINE", 4),
        ("baseline", "DELETE", 1)]
    # The baseline's diff shows the drift while untracked.
    assert rows(conn, "SELECT diff FROM history_events('t', key => '2') WHERE pgh_operation = 'BASELINE'"
                      " ORDER BY pgh_id DESC LIMIT 1") == [({"v": ["b", "B"]},)]


def test_baseline_refused_in_repeatable_read(conn):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with pytest.raises(psycopg.errors.InvalidTransactionState):
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            conn.execute("SELECT track_table('t', baseline => true)")
    assert rows(conn, "SELECT count(*) FROM history_track.tracked_table") == [(0,)]


def test_merge_is_replayed(conn):
    if conn.info.server_version < 150000:
        pytest.skip("MERGE exists from PostgreSQL 15 on")
    conn.execute("CREATE TABLE m (id int PRIMARY KEY, v text)")
    conn.execute("SELECT track_table('m')")
    conn.execute("INSERT INTO m VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    conn.execute("""
        MERGE INTO m USING (VALUES (1, 'del', 0), (2, 'upd', 0), (9, 'ins', 1)) AS s(id, act, target) ON m.id = s.id
        WHEN MATCHED AND s.act = 'del' THEN DELETE
        WHEN MATCHED THEN UPDATE SET v = 'B'
        WHEN NOT MATCHED THEN INSERT VALUES (s.target, 'reborn')""")
    assert rows(conn, "SELECT * FROM m ORDER BY id") == [(1, "reborn"), (2, "B"), (3, "c")]
    assert rows(conn, "SELECT * FROM history_as_of(NULL::m, now()) ORDER BY id") == rows(conn, "SELECT * FROM m ORDER BY id")


def test_revert_refuses_partial_history_and_untracked_tables(conn):
    conn.execute("CREATE TABLE s (id int PRIMARY KEY, token text)")
    conn.execute("SELECT track_table('s', columns => '{id}')")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as info:
        conn.execute("SELECT revert_table('s', now())")
    assert info.value.diag.message_hint.startswith("Only a table whose event table mirrors every column")
    # history_as_of gives the columns it has and NULL for the others.
    conn.execute("INSERT INTO s VALUES (1, 'secret')")
    assert rows(conn, "SELECT * FROM history_as_of(NULL::s, now())") == [(1, None)]
    conn.execute("SELECT untrack_table('s')")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        conn.execute("SELECT revert_row('s', 1, now())")
    # After untracking, the kept history still replays up to that point.
    assert rows(conn, "SELECT * FROM history_as_of(NULL::s, now())") == [(1, None)]
