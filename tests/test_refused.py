"""Every refused input: its SQLSTATE, a HINT, and nothing left behind."""

from __future__ import annotations

import psycopg
import pytest

from conftest import catalog_snapshot

SETUP = """
CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric, "Mixed" text);
CREATE TABLE no_key (a int);
CREATE VIEW a_view AS SELECT 1 AS id;
CREATE MATERIALIZED VIEW a_matview AS SELECT 1 AS id;
CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10);
CREATE TABLE reserved (id int PRIMARY KEY, pgh_obj_id int);
CREATE TABLE clash (id int PRIMARY KEY);
CREATE TABLE clash_event (x int);
CREATE FOREIGN DATA WRAPPER dummy;
CREATE SERVER nowhere FOREIGN DATA WRAPPER dummy;
CREATE FOREIGN TABLE remote (id int) SERVER nowhere;
CREATE SEQUENCE a_sequence;
"""

CASES = [
    # (call, SQLSTATE)
    ("track_table('missing')", "42P01"),
    ("track_table(NULL)", "22004"),
    ("track_table('no_key')", "55000"),
    ("track_table('a_view')", "42809"),
    ("track_table('a_matview')", "42809"),
    ("track_table('remote')", "42809"),
    ("track_table('a_sequence')", "42809"),
    ("track_table('parted_1')", "0A000"),
    ("track_table('reserved')", "42701"),
    ("track_table('clash')", "42P07"),
    ("track_table('pg_catalog.pg_class')", "42809"),
    ("track_table('accounts', operations => '{insert,merge}')", "22023"),
    ("track_table('accounts', operations => '{}')", "22023"),
    ("track_table('accounts', operations => ARRAY[NULL]::text[])", "22023"),
    ("track_table('accounts', snapshot => 'new')", "22023"),
    ("track_table('accounts', condition => 'true')", "22023"),
    ("track_table('accounts', changed => '{nope}')", "42703"),
    ("track_table('accounts', changed => '{}')", "22023"),
    ("track_table('accounts', columns => '{id,mixed}')", "42703"),
    ("track_table('accounts', exclude => '{nope}')", "42703"),
    ("track_table('accounts', exclude => '{id,owner,balance,Mixed}')", "22023"),
    ("track_table('accounts', label => '')", "22023"),
    ("track_table('accounts', label => ' ')", "22023"),
    ("track_table('accounts', label => 'delete')", "22023"),
    ("track_table('accounts', label => 'x', snapshot => 'sideways')", "22023"),
    ("track_table('accounts', label => 'x', snapshot => 'old', operations => '{insert,update}')", "22023"),
    ("track_table('accounts', label => 'x', snapshot => 'new', operations => '{delete}')", "22023"),
    ("track_table('accounts', label => 'x', operations => '{delete}', changed => '{owner}')", "22023"),
    ("track_table('accounts', label => 'x', condition => 'OLD.nope = 1')", "42P01"),
    ("track_table('accounts', label => 'x', condition => 'nope')", "42703"),
    ("track_table('accounts', label => 'x', condition => 'NEW.balance >')", "42601"),
    ("track_table('accounts', label => 'x', condition => 'NEW.owner')", "42804"),
    ("track_table('accounts', label => 'x', condition => 'true; DROP TABLE accounts')", "42601"),
    ("track_table('accounts', label => 'x', condition => E'true\\n); DROP TABLE accounts; --')", "42601"),
    ("track_table('accounts', label => 'x', condition => 'true)) OR ((true')", "42601"),
    ("track_table('accounts', label => 'x', condition => '/* unclosed')", "42601"),
    ("track_table('accounts', label => 'x', condition => 'NEW.id = (SELECT 1)')", "0A000"),
    ("track_table('accounts', label => 'x', condition => 'EXISTS (SELECT FROM pg_authid)')", "0A000"),
    ("track_table('accounts', label => 'x', condition => 'random() > 0.5')", "0A000"),
    ("track_table('accounts', label => 'x', condition => 'nextval(''public.a_sequence'') > 0')", "0A000"),
    ("track_table('accounts', label => 'x', condition => 'pg_catalog.set_config(''a.b'', ''c'', true) = ''c''')", "0A000"),
    ("track_table('accounts', label => 'x', condition => 'count(*) > 1')", "0A000"),
    ("track_table('accounts', label => 'x', operations => '{insert}', condition => 'OLD.balance > 0')", "22023"),
    ("track_table('accounts', label => 'x', operations => '{delete}', condition => 'NEW.balance > 0')", "22023"),
    ("track_table('accounts', label => 'x', condition => '   ')", "22023"),
    ("untrack_table(NULL)", "22004"),
]


@pytest.mark.parametrize(("call", "sqlstate"), CASES, ids=[c for c, _ in CASES])
def test_refused_with_sqlstate_and_nothing_left_behind(conn, call, sqlstate):
    conn.execute(SETUP)
    before = catalog_snapshot(conn)
    with pytest.raises(psycopg.Error) as info:
        conn.execute(f"SELECT {call}")
    assert info.value.sqlstate == sqlstate, info.value.diag.message_primary
    assert info.value.sqlstate != "XX000"
    if sqlstate != "42P01" or "condition" in call:
        assert info.value.diag.message_hint, f"no HINT for {call}"
    assert catalog_snapshot(conn) == before
    # The table still works, untracked.
    conn.execute("INSERT INTO accounts VALUES (1, 'a', 1, 'm')")


def test_refusal_on_a_tracked_table_changes_nothing(conn):
    """A refused labeled tracker on an already-tracked table keeps the old trackers working."""
    conn.execute(SETUP)
    conn.execute("SELECT track_table('accounts')")
    before = catalog_snapshot(conn)
    bodies = conn.execute("SELECT array_agg(prosrc ORDER BY proname) FROM pg_proc"
                          " WHERE pronamespace = 'history_track'::regnamespace AND proname ~ '^_t'").fetchone()
    for call, _ in CASES[12:]:
        if call.startswith("untrack"):
            continue
        with pytest.raises(psycopg.Error):
            conn.execute(f"SELECT {call}")
    assert catalog_snapshot(conn) == before
    assert conn.execute("SELECT array_agg(prosrc ORDER BY proname) FROM pg_proc"
                        " WHERE pronamespace = 'history_track'::regnamespace AND proname ~ '^_t'").fetchone() == bodies
    conn.execute("INSERT INTO accounts VALUES (1, 'a', 1, 'm')")
    assert conn.execute("SELECT pgh_label, id FROM accounts_event").fetchall() == [("insert", 1)]


def test_redefining_a_tracker_is_refused(conn):
    conn.execute(SETUP)
    conn.execute("SELECT track_table('accounts')")
    conn.execute("SELECT track_table('accounts', label => 'rich', condition => 'NEW.balance > 100')")
    conn.execute("SELECT track_table('accounts', label => 'rich', condition => 'NEW.balance > 100')")
    with pytest.raises(psycopg.errors.DuplicateObject) as info:
        conn.execute("SELECT track_table('accounts', label => 'rich', condition => 'NEW.balance > 1000')")
    assert "untrack_table" in info.value.diag.message_hint
    # The default update tracker watches every column; asking for another one is a redefinition.
    with pytest.raises(psycopg.errors.DuplicateObject):
        conn.execute("SELECT track_table('accounts', changed => '{owner}')")
    conn.execute("SELECT untrack_table('accounts', label => 'update')")
    conn.execute("SELECT track_table('accounts', operations => '{update}', changed => '{owner}')")
    assert conn.execute("SELECT label, changed::text[] FROM history_trackers ORDER BY label").fetchall() == [
        ("delete", None), ("insert", None), ("rich", None), ("update", ["owner"])]


def test_untrack_refusals(conn):
    conn.execute(SETUP)
    conn.execute("SELECT track_table('accounts')")
    with pytest.raises(psycopg.errors.UndefinedObject):
        conn.execute("SELECT untrack_table('accounts', label => 'nope')")
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("SELECT untrack_table('accounts', label => 'insert', drop_events => true)")
    with pytest.raises(psycopg.errors.UndefinedTable):
        conn.execute("SELECT untrack_table('missing')")
