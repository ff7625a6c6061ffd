"""record_history_event: manual events."""

from __future__ import annotations

import psycopg
import pytest

from conftest import rows


def test_manual_event_stores_the_row_now_with_label_and_context(conn):
    conn.execute("CREATE TYPE code AS ENUM ('a', 'b'); CREATE TABLE t (k code PRIMARY KEY, v text, hidden text)")
    conn.execute("SELECT track_table('t', exclude => '{hidden}')")
    conn.execute("INSERT INTO t VALUES ('b', 'one', 'x')")
    conn.execute("UPDATE t SET v = 'two'")
    with conn.transaction():
        conn.execute("SELECT set_history_context('{\"user\": \"ann\"}')")
        pgh_id = conn.execute("SELECT record_history_event('t', 'b'::code, 'approved', '{\"user\": \"bob\"}')").fetchone()[0]
        ctx_id = conn.execute("SELECT set_history_context('{}')").fetchone()[0]
    assert rows(conn, "SELECT pgh_id, pgh_label, pgh_operation, pgh_obj_id, pgh_context, pgh_context_id, v"
                      " FROM t_event WHERE pgh_operation = 'MANUAL'") == [
        (pgh_id, "approved", "MANUAL", "b", {"user": "bob"}, ctx_id, "two")]


def test_manual_events_need_the_right_to_change_the_table(conn, history_track_dsn):
    conn.execute("""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ht_reader') THEN CREATE ROLE ht_reader LOGIN; END IF;
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ht_writer') THEN CREATE ROLE ht_writer LOGIN; END IF;
        END $$;
        CREATE TABLE docs (id int PRIMARY KEY);
        INSERT INTO docs VALUES (1);
        SELECT track_table('docs');
        GRANT SELECT ON docs TO ht_reader;
        GRANT SELECT, UPDATE ON docs TO ht_writer;
    """)
    with psycopg.connect(history_track_dsn + " user=ht_reader", autocommit=True) as reader:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("SELECT record_history_event('docs', 1, 'printed')")
    with psycopg.connect(history_track_dsn + " user=ht_writer", autocommit=True) as writer:
        writer.execute("SELECT record_history_event('docs', 1, 'printed')")
    # (the row was inserted before tracking began: its only event is the manual one)
    assert rows(conn, "SELECT pgh_label, pgh_operation, id FROM docs_event ORDER BY pgh_id") == [
        ("printed", "MANUAL", 1)]
    conn.execute("DROP OWNED BY ht_reader, ht_writer")
