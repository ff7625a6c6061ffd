"""Extension upgrades: install the previous release, track and write, ALTER
EXTENSION UPDATE, write again; the history is whole, the old tables get the new
trigger code, and the upgraded extension is exactly a fresh install."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest
from conftest import GENERATED
from history_track._resources import control_version
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
PREVIOUS = "0.2.0"


def _version() -> str:
    return control_version((ROOT / "history_track.control").read_text())


@pytest.fixture
def fresh_db(history_track_server) -> Iterator[Any]:
    """Two empty databases (no extension): one to upgrade, one to install fresh."""
    names = ["upgrade_old", "upgrade_new"]
    with psycopg.connect(history_track_server.conninfo("postgres"), autocommit=True) as admin:
        for name in names:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conns = [psycopg.connect(history_track_server.conninfo(n), autocommit=True) for n in names]
    yield conns
    for c in conns:
        c.close()
    with psycopg.connect(history_track_server.conninfo("postgres"), autocommit=True) as admin:
        for name in names:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _members(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    return {
        "objects": conn.execute(
            "SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend"
            " WHERE refobjid = (SELECT oid FROM pg_extension WHERE extname = 'history_track') AND deptype = 'e'"
            " ORDER BY 1").fetchall(),
        "functions": conn.execute(
            "SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid), p.proacl::text FROM pg_proc p"
            " JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'"
            " WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'history_track') ORDER BY 1").fetchall(),
        "event triggers": conn.execute(
            "SELECT evtname, evtevent, evtfoid::regproc::text, evttags FROM pg_event_trigger ORDER BY 1").fetchall(),
        "view": conn.execute("SELECT pg_get_viewdef('history_trackers'::regclass)").fetchall(),
    }


def _generated(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    return [(re.sub(GENERATED.lstrip("^"), "_tN_", name), src) for name, src in conn.execute(
        "SELECT proname, prosrc FROM pg_proc WHERE pronamespace = 'history_track'::regnamespace"
        " AND proname ~ %s ORDER BY proname", [GENERATED]).fetchall()]


SETUP = """
CREATE TABLE orders (id int PRIMARY KEY, status text, total numeric);
SELECT track_table('orders');
SELECT track_table('orders', label => 'paid', operations => '{update}', condition => 'NEW.status = ''paid''');
"""


def test_upgrade_from_the_previous_release_keeps_history_whole(fresh_db):
    old, new = fresh_db
    assert PREVIOUS != _version()
    old.execute(f"CREATE EXTENSION history_track VERSION '{PREVIOUS}'")
    old.execute(SETUP)
    with old.transaction():
        old.execute("SELECT set_history_context('{\"user\": \"ann\"}')")
        old.execute("INSERT INTO orders VALUES (1, 'new', 10), (2, 'new', 20), (3, 'new', 30)")
    old.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
    old.execute("DELETE FROM orders WHERE id = 3")
    before = old.execute("SELECT pgh_id, pgh_label, pgh_operation, pgh_obj_id, pgh_context, id, status, total"
                         " FROM orders_event ORDER BY pgh_id").fetchall()
    assert len(before) == 6

    old.execute("ALTER EXTENSION history_track UPDATE")
    assert old.execute("SELECT extversion FROM pg_extension WHERE extname = 'history_track'").fetchone() == (_version(),)

    # The history recorded before is intact.
    assert old.execute("SELECT pgh_id, pgh_label, pgh_operation, pgh_obj_id, pgh_context, id, status, total"
                       " FROM orders_event ORDER BY pgh_id").fetchall() == before
    # The old table records with the new code: key changes keep the old key,
    # labeled trackers write before the default one, reverts are labeled.
    old.execute("UPDATE orders SET id = 20, status = 'paid' WHERE id = 2")
    assert old.execute("SELECT pgh_label, pgh_obj_id, pgh_old_obj_id FROM orders_event"
                       " WHERE pgh_id > %s ORDER BY pgh_id", [before[-1][0]]).fetchall() == [
        ("paid", 20, 2), ("update", 20, 2)]
    assert old.execute("SELECT * FROM history_as_of(NULL::orders, now()) ORDER BY id").fetchall() == \
        old.execute("SELECT * FROM orders ORDER BY id").fetchall()
    assert old.execute("SELECT pgh_label, diff FROM history_events('orders', key => '20')").fetchall() == [
        ("insert", {"id": [None, 2], "status": [None, "new"], "total": [None, 20]}),
        ("paid", {"id": [2, 20], "status": ["new", "paid"]}),
        ("update", {"id": [2, 20], "status": ["new", "paid"]}),
    ]
    old.execute("SELECT revert_row('orders', 1, (SELECT min(pgh_created_at) FROM orders_event))")
    assert old.execute("SELECT status FROM orders WHERE id = 1").fetchone() == ("new",)
    # ALTER TABLE is followed on the upgraded database too.
    old.execute("ALTER TABLE orders RENAME COLUMN total TO amount")
    assert old.execute("SELECT attname FROM pg_attribute WHERE attrelid = 'orders_event'::regclass"
                       " AND attname IN ('total', 'amount')").fetchall() == [("amount",)]

    # The upgraded extension is exactly a fresh install of this version ...
    new.execute("CREATE EXTENSION history_track")
    new.execute(SETUP)
    new.execute("ALTER TABLE orders RENAME COLUMN total TO amount")
    assert _members(old) == _members(new)
    # ... and the old table's trigger code is what this version generates.
    assert _generated(old) == _generated(new)


def test_the_upgrade_script_is_what_src_gives():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "upgrade_script.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_release_has_an_upgrade_path_to_this_version():
    """upgrade/ keeps each release's install script; each has a script to the next."""
    releases = sorted((m.group(1) for p in (ROOT / "upgrade").glob("history_track--*.sql")
                       if (m := re.fullmatch(r"history_track--(\d+\.\d+\.\d+)\.sql", p.name))),
                      key=lambda v: tuple(map(int, v.split("."))))
    chain = releases + [_version()]
    for a, b in zip(chain, chain[1:]):
        assert (ROOT / "upgrade" / f"history_track--{a}--{b}.sql").exists(), (a, b)


def test_upgrade_to_the_secure_catalog_converts_history_and_compiles_conditions_as_the_owner(fresh_db):
    """0.2.0 stored values of an owner's types as those types and kept
    conditions as text: the upgrade stores them as history now does, parses
    each condition as the table's owner (whose code then runs as the owner, not
    as the extension), and removes, with a WARNING, a tracker whose condition
    the new rules refuse."""
    old, _ = fresh_db
    old.execute("CREATE EXTENSION history_track VERSION '0.2.0'")
    old.execute("""
        DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'htu_owner') THEN CREATE ROLE htu_owner; END IF; END $$;
        CREATE SCHEMA u AUTHORIZATION htu_owner;
        SET ROLE htu_owner;
        CREATE TABLE u.log (who name);
        CREATE FUNCTION u.note(int) RETURNS boolean LANGUAGE sql AS $$ INSERT INTO u.log VALUES (current_user) RETURNING true $$;
        CREATE DOMAIN u.pos AS int CHECK (VALUE > 0);
        CREATE TYPE u.mood AS ENUM ('sad', 'ok');
        CREATE TABLE u.t (id u.pos PRIMARY KEY, mood u.mood, v text);
        SELECT track_table('u.t');
        SELECT track_table('u.t', label => 'ok', operations => '{update}', condition => 'NEW.mood = ''ok''');
        SELECT track_table('u.t', label => 'setting', operations => '{update}',
                           condition => 'current_setting(''application_name'') = ''x''');
        INSERT INTO u.t VALUES (1, 'sad', 'a');
        UPDATE u.t SET mood = 'ok';
        RESET ROLE;
    """)
    before = old.execute("SELECT pgh_id, pgh_label, pgh_obj_id, id, mood::text, v FROM u.t_event ORDER BY pgh_id").fetchall()
    warnings: list[str] = []
    old.add_notice_handler(lambda d: warnings.append(f"{d.severity}: {d.message_primary}"))
    old.execute("ALTER EXTENSION history_track UPDATE")
    assert warnings == ['WARNING: tracker "setting" of table u.t was removed: its condition cannot be compiled']
    assert old.execute("SELECT pgh_id, pgh_label, pgh_obj_id, id, mood, v FROM u.t_event ORDER BY pgh_id").fetchall() == before
    assert old.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'u.t_event'::regclass"
                       " AND attname IN ('pgh_obj_id', 'id', 'mood') ORDER BY attnum").fetchall() == [
        ("pgh_obj_id", "integer"), ("id", "integer"), ("mood", "text")]
    assert old.execute("SELECT label, condition FROM history_trackers WHERE table_name = 'u.t'::regclass ORDER BY label").fetchall() == [
        ("delete", None), ("insert", None), ("ok", "((new).mood = 'ok'::text)"), ("update", None)]
    old.execute("UPDATE u.t SET mood = 'sad'")
    old.execute("UPDATE u.t SET mood = 'ok'")
    assert old.execute("SELECT pgh_label, mood FROM u.t_event WHERE pgh_id > %s ORDER BY pgh_id", [before[-1][0]]).fetchall() == [
        ("update", "sad"), ("ok", "ok"), ("update", "ok")]
    assert old.execute("SELECT * FROM check_history()").fetchall() == []
    assert old.execute("SELECT * FROM history_as_of(NULL::u.t, now())").fetchall() == [(1, "ok", "a")]
    # The event table is remembered, and its tree's relations: the schema's
    # owner can no longer drop it.
    assert old.execute("SELECT event_table::text, history_of FROM history_track.event_table").fetchall() == [("u.t_event", "u.t")]
    assert old.execute("SELECT relation::text FROM history_track.tracked_relation").fetchall() == [("u.t",)]
    with pytest.raises(psycopg.errors.DependentObjectsStillExist):
        old.execute("SET ROLE htu_owner; DROP TABLE u.t_event")
    old.execute("RESET ROLE")
    old.execute("DROP SCHEMA u CASCADE; DROP OWNED BY htu_owner; DROP ROLE htu_owner")


def test_upgrade_from_the_first_release_through_every_script(fresh_db):
    old, new = fresh_db
    old.execute("CREATE EXTENSION history_track VERSION '0.1.0'")
    old.execute(SETUP)
    old.execute("INSERT INTO orders VALUES (1, 'new', 10); UPDATE orders SET status = 'paid'")
    old.execute("ALTER EXTENSION history_track UPDATE")
    assert old.execute("SELECT extversion FROM pg_extension WHERE extname = 'history_track'").fetchone() == (_version(),)
    old.execute("UPDATE orders SET status = 'paid again'")
    assert old.execute("SELECT pgh_label, status FROM orders_event ORDER BY pgh_id").fetchall() == [
        ("insert", "new"), ("update", "paid"), ("paid", "paid"), ("update", "paid again")]   # (0.1.0's order)
    new.execute("CREATE EXTENSION history_track")
    new.execute(SETUP)
    assert _members(old) == _members(new)
