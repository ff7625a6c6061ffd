"""Installing without the extension mechanism (history-track install --no-extension),
for managed PostgreSQL: the same API from the same SQL, refused twice, removable."""

from __future__ import annotations

import subprocess

import psycopg
import pytest
from psycopg import sql

from history_track.install import InstallError, install_without_extension, uninstall
from history_track.pytest_plugin import install_mode


def test_the_fixture_databases_are_installed_the_way_the_run_says(conn, request):
    """The whole suite runs once per install mode (tools/all_majors.py): make
    sure the mode is the one the databases really have."""
    extension = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'history_track'").fetchall()
    plain = conn.execute("SELECT to_regclass('history_track.installation') IS NOT NULL").fetchone()[0]
    import history_track
    if install_mode(request.config) == "no-extension":
        assert extension == [] and plain
        assert conn.execute("SELECT version, schema::text, event_triggers FROM history_track.installation"
                            ).fetchall() == [(history_track.__version__, "public", True)]
    else:
        assert extension == [(history_track.__version__,)] and not plain


@pytest.fixture
def empty_db(history_track_server):
    name = "plain_install"
    with psycopg.connect(history_track_server.conninfo("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield history_track_server.conninfo(name)
    with psycopg.connect(history_track_server.conninfo("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_install_into_a_schema_use_refuse_twice_uninstall(empty_db):
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA audit")
        done = install_without_extension(conn, schema="audit")
        assert (done.schema, done.event_triggers) == ("audit", True)
        conn.execute("SET search_path = public, audit")
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, s text)")
        conn.execute("SELECT audit.track_table('orders')")
        conn.execute("INSERT INTO orders VALUES (1, 'new')")
        conn.execute("ALTER TABLE orders RENAME COLUMN s TO status")      # followed: event triggers are there
        conn.execute("UPDATE orders SET status = 'paid'")
        assert conn.execute("SELECT pgh_operation, status FROM orders_event ORDER BY pgh_id").fetchall() == [
            ("INSERT", "new"), ("UPDATE", "paid")]
        # Nothing is a member of an extension; the API is in audit.
        assert conn.execute("SELECT count(*) FROM pg_depend WHERE deptype = 'e'"
                            " AND refobjid IN (SELECT oid FROM pg_extension WHERE extname = 'history_track')"
                            ).fetchone() == (0,)
        assert conn.execute("SELECT pronamespace::regnamespace::text FROM pg_proc WHERE proname = 'track_table'"
                            ).fetchall() == [("audit",)]
        with pytest.raises(InstallError, match=r"already installed in this database \(plain\)"):
            install_without_extension(conn)
        with pytest.raises(psycopg.errors.DuplicateSchema):   # CREATE EXTENSION finds the schema taken
            conn.execute("CREATE EXTENSION history_track")
        with pytest.raises(InstallError, match="while tables are tracked: orders"):
            uninstall(conn)
        conn.execute("SELECT audit.untrack_table('orders')")
        assert uninstall(conn) == "plain"
        assert conn.execute("SELECT count(*) FROM pg_proc WHERE pronamespace = 'audit'::regnamespace").fetchone() == (0,)
        assert conn.execute("SELECT to_regnamespace('history_track'), count(*) FROM pg_event_trigger").fetchone() == (None, 0)
        assert conn.execute("SELECT count(*) FROM orders_event").fetchone() == (2,)   # history kept
        conn.execute("INSERT INTO orders VALUES (2, 'after')")                    # no triggers left
        with pytest.raises(InstallError, match="not installed"):
            uninstall(conn)


def test_install_refused_over_the_extension(empty_db):
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION history_track")
        with pytest.raises(InstallError, match=r"already installed in this database \(extension\)"):
            install_without_extension(conn)
        assert uninstall(conn) == "extension"
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'history_track'").fetchone() == (0,)


def test_a_role_that_may_not_create_event_triggers_gets_the_api_and_a_warning(empty_db, history_track_server):
    """Managed PostgreSQL: the installing role is no superuser."""
    with psycopg.connect(empty_db, autocommit=True) as admin:
        admin.execute("""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ht_admin') THEN CREATE ROLE ht_admin LOGIN; END IF;
            END $$""")
        admin.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO ht_admin").format(sql.Identifier(admin.info.dbname)))
        admin.execute("GRANT CREATE ON SCHEMA public TO ht_admin")
    try:
        proc = subprocess.run(["history-track", "install", "--no-extension", "--dsn", empty_db + " user=ht_admin"],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("installed history_track ")
        assert proc.stderr.startswith("warning: this role may not create event triggers")
        with psycopg.connect(empty_db + " user=ht_admin", autocommit=True) as conn:
            assert conn.execute("SELECT event_triggers FROM history_track.installation").fetchone() == (False,)
            conn.execute("CREATE TABLE orders (id int PRIMARY KEY, s text)")
            conn.execute("SELECT track_table('orders')")
            with conn.transaction():
                conn.execute("SELECT set_history_context('{\"user\": \"ann\"}')")
                conn.execute("INSERT INTO orders VALUES (1, 'new')")
            conn.execute("UPDATE orders SET s = 'paid'")
            assert conn.execute("SELECT pgh_operation, pgh_context, s FROM orders_event ORDER BY pgh_id").fetchall() == [
                ("INSERT", {"user": "ann"}, "new"), ("UPDATE", None, "paid")]
            assert conn.execute("SELECT s FROM history_as_of(NULL::orders, now())").fetchall() == [("paid",)]
            conn.execute("SELECT untrack_table('orders')")
        proc = subprocess.run(["history-track", "uninstall", "--dsn", empty_db + " user=ht_admin"],
                              capture_output=True, text=True)
        assert (proc.returncode, proc.stdout.strip()) == (
            0, "removed history_track (installed without the extension); event tables kept")
    finally:
        with psycopg.connect(empty_db, autocommit=True) as admin:
            admin.execute("DROP OWNED BY ht_admin CASCADE")
            admin.execute(sql.SQL("REVOKE CREATE ON DATABASE {} FROM ht_admin").format(sql.Identifier(admin.info.dbname)))


def test_cli_no_extension_needs_a_database():
    proc = subprocess.run(["history-track", "install", "--no-extension"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["history-track: error: --no-extension installs into a database: give --dsn",
                                        "hint: history-track install --no-extension --dsn 'host=... dbname=...'"]


@pytest.mark.parametrize("how", ["extension", "plain"])
def test_installing_uses_no_operator_the_schemas_owner_defined(empty_db, how):
    """CREATE EXTENSION runs the script with the extension's schema first on the
    search path (and install --no-extension with the session's): an operator
    its owner defined there that matches better than PostgreSQL's polymorphic
    one must not end up in the catalog's constraints, to run as whoever writes
    the catalog. The script pins search_path and qualifies its operators."""
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE public.trap_log (who name);
            CREATE FUNCTION public.trap(text[], text[]) RETURNS boolean LANGUAGE plpgsql
                AS $$ BEGIN INSERT INTO public.trap_log VALUES (current_user); RETURN true; END $$;
            CREATE OPERATOR public.<@ (LEFTARG = text[], RIGHTARG = text[], FUNCTION = public.trap);
            CREATE OPERATOR public.@> (LEFTARG = text[], RIGHTARG = text[], FUNCTION = public.trap);
        """)
        if how == "extension":
            conn.execute("CREATE EXTENSION history_track")
        else:
            install_without_extension(conn)
        conn.execute("CREATE TABLE t (id int PRIMARY KEY); SELECT track_table('t');"
                     " SELECT track_table('t', label => 'x', operations => '{insert}')")
        assert conn.execute("SELECT count(*) FROM public.trap_log").fetchone() == (0,)
        assert conn.execute("SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend"
                            " WHERE refobjid = 'public.trap(text[], text[])'::regprocedure"
                            " OR refobjid IN (SELECT oid FROM pg_operator WHERE oprcode = 'public.trap'::regproc)"
                            " ORDER BY 1").fetchall() == [("operator <@(text[],text[])",), ("operator @>(text[],text[])",)]
