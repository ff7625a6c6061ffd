"""Lifecycle: dump and restore bring back the events, the catalog and working
tracking; ALTER TABLE on a tracked table is followed or refused whole."""

from __future__ import annotations

import subprocess

import psycopg
import pytest
from psycopg import sql


@pytest.mark.parametrize("fmt", ["plain", "custom"])
def test_dump_and_restore_keep_history_and_tracking(history_track_server, history_track_dsn, conn, fmt, tmp_path):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, s text)")
    conn.execute("SELECT track_table('orders')")
    conn.execute("SELECT track_table('orders', label => 'paid', operations => '{update}', condition => 'NEW.s = ''paid''')")
    conn.execute("SELECT start_hash_chain('orders')")
    with conn.transaction():
        conn.execute("SELECT set_history_context('{\"user\": \"ann\"}')")
        conn.execute("INSERT INTO orders VALUES (1, 'new')")
    conn.execute("UPDATE orders SET s = 'paid'")
    # A dropped column: attribute numbers differ after the restore.
    conn.execute("ALTER TABLE orders ADD COLUMN gone int")
    conn.execute("ALTER TABLE orders DROP COLUMN gone")
    before = conn.execute("SELECT pgh_id, pgh_label, pgh_operation, pgh_obj_id, pgh_context, id, s"
                          " FROM orders_event ORDER BY pgh_id").fetchall()

    bindir = history_track_server.installation.bindir
    env = {**history_track_server.environ(), "PATH": "/usr/bin:/bin"}
    dbname = conn.info.dbname
    target = f"{dbname}_restored"
    with psycopg.connect(history_track_server.conninfo("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target)))
    dump = tmp_path / "dump"
    if fmt == "plain":
        subprocess.run([bindir / "pg_dump", "-f", dump, dbname], env=env, check=True)
        proc = subprocess.run([bindir / "psql", "-X", "-v", "ON_ERROR_STOP=1", "-q", "-f", dump, target],
                              env=env, capture_output=True, text=True)
    else:
        subprocess.run([bindir / "pg_dump", "-Fc", "-f", dump, dbname], env=env, check=True)
        proc = subprocess.run([bindir / "pg_restore", "--exit-on-error", "-d", target, dump],
                              env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr

    with psycopg.connect(history_track_server.conninfo(target), autocommit=True) as restored:
        assert restored.execute("SELECT pgh_id, pgh_label, pgh_operation, pgh_obj_id, pgh_context, id, s"
                                " FROM orders_event ORDER BY pgh_id").fetchall() == before
        assert restored.execute("SELECT label FROM history_trackers ORDER BY label").fetchall() == [
            ("delete",), ("insert",), ("paid",), ("update",)]
        restored.execute("INSERT INTO orders VALUES (2, 'x')")
        restored.execute("UPDATE orders SET s = 'paid' WHERE id = 2")
        after = restored.execute("SELECT pgh_id, pgh_label, pgh_operation, id FROM orders_event"
                                 " WHERE pgh_obj_id = 2 ORDER BY pgh_id").fetchall()
        assert [a[1:] for a in after] == [("insert", "INSERT", 2), ("paid", "UPDATE", 2), ("update", "UPDATE", 2)]
        assert after[0][0] > before[-1][0]  # the identity went on from where it was
        # The hash chain came back whole, and goes on.
        assert restored.execute("SELECT verified, problem FROM verify_history('orders')").fetchone() == (6, None)
        # ALTER TABLE is followed in the restored database too.
        restored.execute("ALTER TABLE orders RENAME COLUMN s TO status")
        restored.execute("UPDATE orders SET status = 'shipped' WHERE id = 2")
        assert restored.execute("SELECT pgh_label, status, gone FROM orders_event ORDER BY pgh_id DESC LIMIT 1"
                                ).fetchone() == ("update", "shipped", None)
        assert restored.execute("SELECT * FROM history_as_of(NULL::orders, now()) ORDER BY id").fetchall() == \
            restored.execute("SELECT * FROM orders ORDER BY id").fetchall()
        # A new table tracked after restore gets a fresh generated-function id.
        restored.execute("CREATE TABLE more (id int PRIMARY KEY); SELECT track_table('more')")
        restored.execute("INSERT INTO more VALUES (1)")
        assert restored.execute("SELECT count(*) FROM more_event").fetchone() == (1,)
    with psycopg.connect(history_track_server.conninfo("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(target)))


def snapshot(conn):
    return {
        "event columns": conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 't_event'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum").fetchall(),
        "catalog": conn.execute("SELECT columns, exclude FROM history_track.tracked_table").fetchall(),
        "trackers": conn.execute("SELECT label, condition, changed FROM history_track.tracker ORDER BY label").fetchall(),
        "functions": conn.execute("SELECT p.oid::regprocedure::text, md5(prosrc) FROM pg_proc p"
                                  " WHERE pronamespace = 'history_track'::regnamespace AND proname LIKE '\\_t%'"
                                  " ORDER BY 1").fetchall(),
        "table": conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0"
                              " AND NOT attisdropped ORDER BY attnum").fetchall(),
    }


REFUSED_ALTERS = [
    ("ALTER TABLE t DROP COLUMN s", "2BP01"),                     # the condition uses it
    ("ALTER TABLE t DROP COLUMN s CASCADE", "2BP01"),
    ("ALTER TABLE t DROP COLUMN n", "2BP01"),                     # a changed list watches it
    ("ALTER TABLE t ALTER COLUMN v TYPE int USING length(v)", "42804"),   # 'hello' does not convert
    ("ALTER TABLE t ALTER COLUMN n TYPE smallint", "42804"),      # the table's 1 fits, the history's 100000 not
    ("ALTER TABLE t DROP CONSTRAINT t_pkey", "0A000"),
    ("ALTER TABLE t DROP CONSTRAINT t_pkey, ADD PRIMARY KEY (id, n)", "0A000"),
    ("ALTER TABLE t ADD COLUMN x int, RENAME COLUMN v TO old_v", "42601"),   # not one statement in PostgreSQL either
]


@pytest.mark.parametrize("stmt,state", REFUSED_ALTERS, ids=[s for s, _ in REFUSED_ALTERS])
def test_refused_alter_changes_nothing(conn, stmt, state):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, s text, v text, n int)")
    conn.execute("SELECT track_table('t')")
    conn.execute("SELECT track_table('t', label => 'big', operations => '{update}', changed => '{n}')")
    conn.execute("SELECT track_table('t', label => 'done', operations => '{update}', condition => $$NEW.s = 'done'$$)")
    conn.execute("INSERT INTO t VALUES (1, 'new', 'hello', 100000)")
    conn.execute("UPDATE t SET n = 1")
    last = conn.execute("SELECT max(pgh_id) FROM t_event").fetchone()[0]
    before = snapshot(conn)
    with pytest.raises(psycopg.Error) as info:
        conn.execute(stmt)
    assert info.value.sqlstate == state, info.value
    assert snapshot(conn) == before
    conn.execute("UPDATE t SET s = 'done'")  # tracking works as before
    assert conn.execute("SELECT pgh_label FROM t_event WHERE pgh_id > %s ORDER BY pgh_id", [last]).fetchall() == [
        ("done",), ("update",)]


def test_type_change_of_a_condition_column_is_checked_against_the_condition(conn):
    """A column a condition uses may change type (Django's AlterField of
    max_length, say) as long as the condition still fits; if it does not, the
    ALTER is refused whole with the condition named."""
    conn.execute("CREATE TABLE u (id int PRIMARY KEY, k varchar(10))")
    conn.execute("SELECT track_table('u')")
    conn.execute("SELECT track_table('u', label => 'done', operations => '{update}', condition => $$NEW.k = 'done'$$)")
    conn.execute("INSERT INTO u VALUES (1, NULL)")
    conn.execute("ALTER TABLE u ALTER COLUMN k TYPE varchar(40)")
    conn.execute("UPDATE u SET k = 'done'")
    assert conn.execute("SELECT pgh_label, k FROM u_event ORDER BY pgh_id").fetchall() == [
        ("insert", None), ("done", "done"), ("update", "done")]
    # History holding only NULLs converts to int, but the condition compares k with 'done'.
    conn.execute("CREATE TABLE w (id int PRIMARY KEY, k text)")
    conn.execute("SELECT track_table('w')")
    conn.execute("SELECT track_table('w', label => 'done', operations => '{update}', condition => $$NEW.k = 'done'$$)")
    conn.execute("INSERT INTO w VALUES (1, NULL)")
    with pytest.raises(psycopg.errors.UndefinedFunction) as info:
        conn.execute("ALTER TABLE w ALTER COLUMN k TYPE int USING NULL")
    assert str(info.value).startswith('the condition of tracker "done" does not fit table public.w as altered')
    assert info.value.diag.message_detail == (
        "operator does not exist: integer = text The condition is: ((new).k = 'done'::text)")
    assert info.value.diag.message_hint.startswith("Remove the tracker first (SELECT untrack_table('public.w', label => 'done'))")
    assert conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'w'::regclass"
                        " AND attname = 'k'").fetchone() == ("text",)


def test_alter_is_followed_for_the_table_owner_and_in_one_transaction(conn, history_track_dsn):
    conn.execute("""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hta_owner') THEN CREATE ROLE hta_owner LOGIN; END IF;
        END $$;
        GRANT CREATE ON SCHEMA public TO hta_owner;""")
    try:
        with psycopg.connect(history_track_dsn + " user=hta_owner", autocommit=True) as owner:
            owner.execute("CREATE TABLE t (id int PRIMARY KEY, a text, b text)")
            owner.execute("SELECT track_table('t', columns => '{id,a,b}')")
            owner.execute("INSERT INTO t VALUES (1, 'x', 'y')")
            with owner.transaction():
                owner.execute("ALTER TABLE t RENAME COLUMN a TO alpha")
                owner.execute("ALTER TABLE t ADD COLUMN c text")   # columns was a list: not mirrored
                owner.execute("ALTER TABLE t DROP COLUMN b")
                owner.execute("UPDATE t SET alpha = 'X', c = 'z'")
            assert owner.execute("SELECT pgh_operation, id, alpha, b FROM t_event ORDER BY pgh_id").fetchall() == [
                ("INSERT", 1, "x", "y"), ("UPDATE", 1, "X", None)]
            assert owner.execute("SELECT attname FROM pg_attribute WHERE attrelid = 't_event'::regclass"
                                 " AND attname = 'c'").fetchall() == []
            assert owner.execute("SELECT * FROM history_as_of(NULL::t, now())").fetchall() == [(1, "X", None)]
        assert conn.execute("SELECT columns FROM history_track.tracked_table").fetchall() == [(["id", "alpha"],)]
    finally:
        conn.execute("DROP OWNED BY hta_owner CASCADE; DROP ROLE hta_owner")


def test_alter_of_untracked_tables_and_of_kept_history_is_left_alone(conn):
    conn.execute("CREATE TABLE plain (id int PRIMARY KEY, a text)")
    conn.execute("ALTER TABLE plain RENAME COLUMN a TO b")
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, a text)")
    conn.execute("SELECT track_table('t')")
    conn.execute("INSERT INTO t VALUES (1, 'x')")
    conn.execute("SELECT untrack_table('t')")   # history kept, nothing tracked
    conn.execute("ALTER TABLE t RENAME COLUMN a TO b")
    assert conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = 't_event'::regclass"
                        " AND attname IN ('a', 'b')").fetchall() == [("a",)]
    # Tracking again finds the history under the old name: the new name is a new column.
    conn.execute("SELECT track_table('t')")
    conn.execute("UPDATE t SET b = 'y'")
    assert conn.execute("SELECT pgh_operation, a, b FROM t_event ORDER BY pgh_id").fetchall() == [
        ("INSERT", "x", None), ("UPDATE", None, "y")]
