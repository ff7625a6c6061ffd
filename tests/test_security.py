"""Privileges and search_path: an application role writes a tracked table and
its history is recorded where it cannot touch it, whatever it does to its
search_path."""

from __future__ import annotations

from typing import Any, Iterator

import psycopg
import pytest

from conftest import rows


@pytest.fixture
def app(conn: psycopg.Connection[Any], history_track_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A login role with DML on public.orders only; orders is tracked by its owner."""
    conn.execute("""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ht_app') THEN CREATE ROLE ht_app LOGIN; END IF;
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ht_owner') THEN CREATE ROLE ht_owner LOGIN; END IF;
        END $$;
        GRANT CREATE ON SCHEMA public TO ht_owner;
        SET ROLE ht_owner;
        CREATE TABLE public.orders (id int PRIMARY KEY, status text);
        GRANT SELECT, INSERT, UPDATE, DELETE ON public.orders TO ht_app;
        SELECT track_table('public.orders');
        RESET ROLE;
        CREATE SCHEMA evil AUTHORIZATION ht_app;
    """)
    with psycopg.connect(history_track_dsn + " user=ht_app", autocommit=True) as app_conn:
        yield app_conn
    conn.execute("DROP SCHEMA evil CASCADE; DROP OWNED BY ht_app, ht_owner CASCADE")


def test_application_role_cannot_read_forge_or_rewrite_history(conn, app):
    app.execute("INSERT INTO orders VALUES (1, 'new')")
    for stmt, state in [
        ("SELECT * FROM orders_event", "42501"),
        ("INSERT INTO orders_event (pgh_created_at, pgh_label, pgh_operation, pgh_obj_id) VALUES (now(), 'x', 'x', 1)", "42501"),
        ("UPDATE orders_event SET status = 'forged'", "42501"),
        ("DELETE FROM orders_event", "42501"),
        ("TRUNCATE orders_event", "42501"),
        ("DROP TABLE orders_event", "42501"),
        ("SELECT untrack_table('orders')", "42501"),
        ("SELECT track_table('orders', label => 'x', operations => '{delete}')", "42501"),
        ("INSERT INTO history_track.tracker (table_name, label, operations, created_by) VALUES ('orders', 'x', '{insert}', 'x')", "42501"),
        ("DELETE FROM history_track.tracker", "42501"),
        ("UPDATE history_track.tracked_table SET exclude = '{}'", "42501"),
        ("INSERT INTO history_track.condition_function VALUES ('pg_catalog.pg_sleep(float8)')", "42501"),
        ("INSERT INTO history_track.config (max_context_bytes) VALUES (1000000000)", "42501"),
        ("ALTER TABLE orders DISABLE TRIGGER history_track_insert", "42501"),
        ("DROP TRIGGER history_track_insert ON orders", "42501"),
    ]:
        with pytest.raises(psycopg.Error) as info:
            app.execute(stmt)
        assert info.value.sqlstate == state, stmt
    app.execute("UPDATE orders SET status = 'paid'")
    assert rows(conn, "SELECT pgh_operation, id, status FROM orders_event ORDER BY pgh_id") == [
        ("INSERT", 1, "new"), ("UPDATE", 1, "paid")]


def test_search_path_look_alikes_do_not_reach_the_trigger(conn, app):
    app.execute("""
        CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '2000-01-01'::timestamptz $$;
        CREATE FUNCTION evil.current_setting(text, boolean) RETURNS text LANGUAGE sql
            AS $$ SELECT '{"user": "forged"}'::text $$;
        CREATE FUNCTION evil.current_setting(text) RETURNS text LANGUAGE sql AS $$ SELECT 'none'::text $$;
        CREATE FUNCTION evil.jsonb_build_array(VARIADIC int[]) RETURNS jsonb LANGUAGE sql AS $$ SELECT '[0]'::jsonb $$;
        CREATE FUNCTION evil.record_image_ne(record, record) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN RETURN false; END $$;
        CREATE FUNCTION evil.upper(text) RETURNS text LANGUAGE sql AS $$ SELECT 'FORGED'::text $$;
        CREATE FUNCTION evil.int_eq(int, int) RETURNS boolean LANGUAGE sql AS $$ SELECT false $$;
        CREATE OPERATOR evil.= (LEFTARG = int, RIGHTARG = int, FUNCTION = evil.int_eq);
        CREATE FUNCTION evil.bigint_eq(bigint, bigint) RETURNS boolean LANGUAGE sql AS $$ SELECT false $$;
        CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.bigint_eq);
        CREATE TABLE evil.pgh_new_rows (id int, status text);
        CREATE TABLE evil.pgh_old_rows (id int, status text);
        CREATE TABLE evil.orders_event (LIKE public.orders);
        SET search_path = evil, pg_catalog, public;
    """)
    app.execute("CREATE TEMP TABLE pgh_new_rows (id int, status text)")
    with app.transaction():
        app.execute("SELECT set_config('history_track.context', '{\"user\": \"alice\"}', true)")
        app.execute("INSERT INTO public.orders VALUES (1, 'new'), (2, 'new')")
        # (The application's own statements resolve "=" through its search_path too.)
        app.execute("UPDATE public.orders SET status = 'paid' WHERE id OPERATOR(pg_catalog.=) 1")
        app.execute("DELETE FROM public.orders WHERE id OPERATOR(pg_catalog.=) 2")
    got = rows(conn, """SELECT pgh_operation, pgh_obj_id, pgh_context, id, status,
                               pgh_created_at > now() - interval '1 hour' AS real_time
                          FROM public.orders_event ORDER BY pgh_id""")
    assert got == [
        ("INSERT", 1, {"user": "alice"}, 1, "new", True),
        ("INSERT", 2, {"user": "alice"}, 2, "new", True),
        ("UPDATE", 1, {"user": "alice"}, 1, "paid", True),
        ("DELETE", 2, {"user": "alice"}, 2, "new", True),
    ]
    assert rows(conn, "SELECT (SELECT count(*) FROM evil.orders_event) + (SELECT count(*) FROM evil.pgh_new_rows)") == [(0,)]


def test_conditions_may_not_call_a_non_superusers_functions(conn):
    conn.execute("""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ht_owner') THEN CREATE ROLE ht_owner LOGIN; END IF;
        END $$;
        GRANT CREATE ON SCHEMA public TO ht_owner;
        CREATE FUNCTION public.trusted_check(int) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT $1 > 0 $$;
        SET ROLE ht_owner;
        CREATE TABLE public.owned (id int PRIMARY KEY);
        CREATE FUNCTION public.sneaky(int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE
            AS $$ BEGIN RAISE NOTICE 'running as %', current_user; RETURN true; END $$;
        CREATE DOMAIN public.checked_int AS int CHECK (public.sneaky(VALUE));
    """)
    for condition in ["public.sneaky(NEW.id)", "NEW.id::public.checked_int > 0"]:
        with pytest.raises(psycopg.errors.FeatureNotSupported) as info:
            conn.execute("SELECT track_table('public.owned', label => 'x', condition => %s)", [condition])
        assert "not allowed" in info.value.diag.message_primary
    # A superuser's function is allowed once a superuser lists it.
    with pytest.raises(psycopg.errors.FeatureNotSupported):
        conn.execute("SELECT track_table('public.owned', label => 'positive', condition => 'public.trusted_check(NEW.id)')")
    conn.execute("RESET ROLE; INSERT INTO history_track.condition_function VALUES ('public.trusted_check(int)'); SET ROLE ht_owner")
    conn.execute("SELECT track_table('public.owned', label => 'positive', condition => 'public.trusted_check(NEW.id)')")
    conn.execute("INSERT INTO public.owned VALUES (-1), (1)")
    assert rows(conn, "SELECT pgh_label, id FROM public.owned_event") == [("positive", 1)]
    conn.execute("RESET ROLE; DROP OWNED BY ht_owner CASCADE; DELETE FROM history_track.condition_function;"
                 " DROP FUNCTION public.trusted_check(int)")


def test_generated_trigger_functions_are_pinned_security_definers(conn):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    conn.execute("SELECT track_table('t')")
    conn.execute("SELECT track_table('t', label => 'x', operations => '{update}', condition => 'NEW.id > 0')")
    got = rows(conn, """
        SELECT p.proname, p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner) = current_user,
               has_function_privilege('public', p.oid, 'EXECUTE')
          FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
         WHERE t.tgrelid = 't'::regclass ORDER BY 1""")
    assert [g[0][-6:] for g in got] == ["delete", "insert", "uncate", "update"]
    assert [g[1:] for g in got] == [
        (True, ["search_path=pg_catalog, pg_temp"], True, False),
        (True, ["search_path=pg_catalog, pg_temp"], True, False),
        (True, ["search_path=pg_catalog, pg_temp", "jit=off", "constraint_exclusion=off"], True, False),
        (True, ["search_path=pg_catalog, pg_temp"], True, False),
    ]



def test_history_cannot_be_rewritten_or_switched_off_by_the_table_owner(conn, history_track_dsn):
    conn.execute("""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'htp_owner') THEN CREATE ROLE htp_owner LOGIN; END IF;
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'htp_app') THEN CREATE ROLE htp_app LOGIN; END IF;
        END $$;
        GRANT CREATE ON SCHEMA public TO htp_owner;""")
    try:
        with psycopg.connect(history_track_dsn + " user=htp_owner", autocommit=True) as owner, \
                psycopg.connect(history_track_dsn + " user=htp_app", autocommit=True) as app:
            owner.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            owner.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON t TO htp_app")
            owner.execute("SELECT track_table('t')")
            app.execute("INSERT INTO t VALUES (1, 'a')")
            for who, stmt, state in [
                (owner, "UPDATE t_event SET v = 'forged'", "42501"),
                (owner, "DELETE FROM t_event", "42501"),
                (owner, "TRUNCATE t_event", "42501"),
                (owner, "INSERT INTO t_event (pgh_created_at, pgh_label, pgh_operation, pgh_obj_id) VALUES (now(), 'x', 'x', 9)", "42501"),
                (owner, "ALTER TABLE t DISABLE TRIGGER history_track_insert", "55000"),
                (owner, "ALTER TABLE t DISABLE TRIGGER USER", "55000"),
                (owner, "DROP TRIGGER history_track_update ON t", "55000"),
                (owner, "SET history_track.pruning = 'on'; DELETE FROM t_event", "42501"),
                (app, "SELECT prune_history('t', now())", "42501"),
                (app, "SET session_replication_role = replica", "42501"),
                (app, "ALTER TABLE t DISABLE TRIGGER history_track_insert", "42501"),
            ]:
                with pytest.raises(psycopg.Error) as info:
                    who.execute(stmt)
                assert info.value.sqlstate == state, stmt
                who.execute("RESET ALL")
            app.execute("UPDATE t SET v = 'b'")
            assert rows(owner, "SELECT pgh_operation, v FROM t_event ORDER BY pgh_id") == [("INSERT", "a"), ("UPDATE", "b")]
            # The owner prunes through the sanctioned function, and it is logged.
            cut = owner.execute("SELECT clock_timestamp()").fetchone()[0]
            app.execute("UPDATE t SET v = 'c'")
            assert owner.execute("SELECT prune_history('t', %s)", [cut]).fetchone() == (1,)
            assert rows(owner, "SELECT pgh_operation, v FROM t_event ORDER BY pgh_id") == [("UPDATE", "b"), ("UPDATE", "c")]
            assert rows(app, "SELECT table_name::text, events_deleted, pruned_by FROM history_track.prune_log") == [
                ("t", 1, "htp_owner")]
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute("DELETE FROM history_track.prune_log")
    finally:
        conn.execute("DROP OWNED BY htp_owner, htp_app CASCADE; DROP ROLE htp_owner, htp_app")
