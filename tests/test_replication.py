"""Logical replication: a subscriber's history comes from the publisher, in
the event table published along with the table (the apply worker runs with
session_replication_role = replica, so no ordinary trigger fires for what it
applies). A tracked table that receives changes without its event table is
warned about at track_table() and reported by check_history().

Runs its own server, with wal_level = logical; the publication and the
subscription are two databases of it."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from history_track.install import create_extension, install_without_extension
from history_track.pytest_plugin import install_mode
from history_track.server import TemporaryServer


@pytest.fixture(scope="module")
def logical(request: pytest.FixtureRequest) -> Iterator[tuple[psycopg.Connection[Any], psycopg.Connection[Any], str]]:
    server = TemporaryServer(pg_config=request.config.getoption("--history-track-pg-config"),
                             postgres_args=TemporaryServer.POSTGRES_ARGS
                             + " -c wal_level=logical -c max_replication_slots=4 -c max_wal_senders=4")
    try:
        with psycopg.connect(server.conninfo("postgres"), autocommit=True) as admin:
            for db in ("pub", "sub"):
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
        pub = psycopg.connect(server.conninfo("pub"), autocommit=True)
        sub = psycopg.connect(server.conninfo("sub"), autocommit=True)
        for c in (pub, sub):
            if install_mode(request.config) == "no-extension":
                install_without_extension(c)
            else:
                create_extension(c)
        yield pub, sub, server.conninfo("pub")
        sub.execute("ALTER SUBSCRIPTION s DISABLE; ALTER SUBSCRIPTION s SET (slot_name = NONE); DROP SUBSCRIPTION s")
        pub.execute("SELECT pg_drop_replication_slot('s')")
        pub.close()
        sub.close()
    finally:
        server.stop()


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_the_subscriber_gets_the_publishers_history(logical):
    pub, sub, pub_dsn = logical
    schema = """
        CREATE TABLE orders (id int PRIMARY KEY, status text);
        CREATE TABLE notes (id int PRIMARY KEY, body text);
    """
    pub.execute(schema)
    pub.execute("SELECT track_table('orders')")
    with pub.transaction():
        pub.execute("SELECT set_history_context('{\"user\": \"ann\"}')")
        pub.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'new')")
    pub.execute("INSERT INTO notes VALUES (1, 'x')")
    # The table with its event table; notes without one.
    pub.execute("CREATE PUBLICATION p FOR TABLE orders, orders_event, notes")
    pub.execute("SELECT pg_create_logical_replication_slot('s', 'pgoutput')")

    sub.execute(schema)
    sub.execute("SELECT track_table('orders')")     # the same event table, for the publisher's events
    sub.execute(sql.SQL("CREATE SUBSCRIPTION s CONNECTION {} PUBLICATION p WITH (create_slot = false, slot_name = 's')")
                .format(sql.Literal(pub_dsn)))
    wait_for(lambda: sub.execute("SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'").fetchone() == (0,)
             and sub.execute("SELECT count(*) FROM orders_event").fetchone() == (2,), "the initial copy")

    # A table tracked on the subscriber whose event table does not come with it: warned, reported.
    warnings: list[str] = []
    sub.add_notice_handler(lambda d: warnings.append(d.message_primary or ""))
    sub.execute("SELECT track_table('notes')")
    assert warnings == ['table public.notes receives changes from subscription "s", which its history will not record']
    assert sub.execute("SELECT table_name::text, problem FROM check_history()").fetchall() == [
        ("notes", 'it receives changes from subscription "s", which does not bring its event table')]

    with pub.transaction():
        pub.execute("SELECT set_history_context('{\"user\": \"bob\"}')")
        pub.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
        pub.execute("UPDATE orders SET id = 20 WHERE id = 2")
    pub.execute("INSERT INTO orders VALUES (3, 'new')")
    pub.execute("DELETE FROM orders WHERE id = 3")
    pub.execute("UPDATE notes SET body = 'y'")
    events = "SELECT pgh_id, pgh_label, pgh_operation, pgh_obj_id, pgh_old_obj_id, pgh_context, id, status FROM orders_event ORDER BY pgh_id"
    expected = pub.execute(events).fetchall()
    assert len(expected) == 6
    wait_for(lambda: sub.execute(events).fetchall() == expected, "the publisher's events")
    assert sub.execute("SELECT * FROM orders ORDER BY id").fetchall() == [(1, "paid"), (20, "new")]
    assert sub.execute("SELECT * FROM history_as_of(NULL::orders, now()) ORDER BY id").fetchall() == [(1, "paid"), (20, "new")]
    assert sub.execute("SELECT count(*) FROM notes_event").fetchone() == (0,)   # as reported
    # What the publisher removes from its history (logged there), the subscriber's goes too.
    pub.execute("SELECT prune_history('orders', now())")
    expected = pub.execute(events).fetchall()
    wait_for(lambda: sub.execute(events).fetchall() == expected, "the pruned history")
    assert pub.execute("SELECT action, events_deleted FROM history_track.prune_log").fetchall() == [("prune", 4)]
