"""Dump and restore: the events, the catalog and working tracking come back."""

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
    with conn.transaction():
        conn.execute("SELECT set_history_context('{\"user\": \"ann\"}')")
        conn.execute("INSERT INTO orders VALUES (1, 'new')")
    conn.execute("UPDATE orders SET s = 'paid'")
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
        # A new table tracked after restore gets a fresh generated-function id.
        restored.execute("CREATE TABLE more (id int PRIMARY KEY); SELECT track_table('more')")
        restored.execute("INSERT INTO more VALUES (1)")
        assert restored.execute("SELECT count(*) FROM more_event").fetchone() == (1,)
    with psycopg.connect(history_track_server.conninfo("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(target)))
