"""Attacks: every promise of doc/security.md, tried by the role it protects
against. mallory owns a schema and the tables in it (in a Django deployment:
the application's own database role); app may only write them; auditor may
only read their history. Each test fails if the promise it is named for is
false.

"Runs with history_track's privileges" is detected, not assumed: the owner's
functions (pwn) write current_user into a log table and, when they find
themselves running as anyone but mallory, try to make mallory a superuser.
"""

from __future__ import annotations

import string
import threading
import time
from typing import Any, Iterator

import psycopg
import pytest
from psycopg import sql

from conftest import rows

ROLES = ("htx_mallory", "htx_app", "htx_auditor")

# The owner's booby traps: code a role owning a schema may define.
TRAPS = """
CREATE TABLE m.log (who name, what text);
GRANT INSERT, SELECT ON m.log TO PUBLIC;
CREATE FUNCTION m.pwn(anyelement) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO m.log VALUES (current_user, pg_catalog.format('%s', $1));
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE 'ALTER ROLE htx_mallory SUPERUSER';
    END IF;
    RETURN true;
END $$;
CREATE DOMAIN m.d AS int CHECK (m.pwn(VALUE));
CREATE DOMAIN m.dt AS text CHECK (m.pwn(VALUE));
CREATE TYPE m.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE m.pair AS (a m.d, b text);
CREATE FUNCTION m.mood_json(m.mood) RETURNS json LANGUAGE sql AS $$ SELECT to_json(m.pwn($1)) $$;
CREATE CAST (m.mood AS json) WITH FUNCTION m.mood_json(m.mood);
CREATE FUNCTION m.mood_jsonb(m.mood) RETURNS jsonb LANGUAGE sql AS $$ SELECT to_jsonb(m.pwn($1)) $$;
CREATE CAST (m.mood AS jsonb) WITH FUNCTION m.mood_jsonb(m.mood);
CREATE FUNCTION m.mood_text(m.mood) RETURNS text LANGUAGE sql AS $$ SELECT CASE WHEN m.pwn($1) THEN 'x' END $$;
CREATE CAST (m.mood AS text) WITH FUNCTION m.mood_text(m.mood) AS IMPLICIT;
CREATE FUNCTION m.mood_int(m.mood) RETURNS int LANGUAGE sql AS $$ SELECT CASE WHEN m.pwn($1) THEN 1 END $$;
CREATE CAST (m.mood AS int) WITH FUNCTION m.mood_int(m.mood) AS IMPLICIT;
CREATE FUNCTION m.pair_json(m.pair) RETURNS json LANGUAGE sql AS $$ SELECT to_json(m.pwn($1)) $$;
CREATE CAST (m.pair AS json) WITH FUNCTION m.pair_json(m.pair);
CREATE FUNCTION m.int_eq(int, int) RETURNS boolean LANGUAGE sql AS $$ SELECT m.pwn($1) $$;
CREATE OPERATOR m.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = m.int_eq);
CREATE OPERATOR m.==== (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq, NEGATOR = OPERATOR(m.!==));
CREATE FUNCTION m.int_ne(int, int) RETURNS boolean LANGUAGE sql AS $$ SELECT m.pwn($1) $$;
CREATE OPERATOR m.!== (LEFTARG = int, RIGHTARG = int, FUNCTION = m.int_ne);
CREATE TABLE m.secret_of_mallory (x int);
-- (for expressions PostgreSQL evaluates while it plans: index, statistics)
CREATE FUNCTION m.ipwn(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM m.pwn($1); RETURN $1; END $$;
"""


@pytest.fixture
def roles(conn: psycopg.Connection[Any], history_track_dsn: str) -> Iterator[dict[str, psycopg.Connection[Any]]]:
    """Connections as mallory (owns schema m and its traps), app (DML on mallory's
    tables, granted by the tests) and auditor (nothing yet)."""
    conn.execute(sql.SQL(";").join(
        sql.SQL("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {n}) THEN CREATE ROLE {r} LOGIN; END IF; END $$")
        .format(n=sql.Literal(r), r=sql.Identifier(r)) for r in ROLES))
    conn.execute("CREATE SCHEMA m AUTHORIZATION htx_mallory; GRANT USAGE ON SCHEMA m TO htx_app, htx_auditor;"
                 " CREATE TABLE public.secret (code text); INSERT INTO public.secret VALUES ('s3cr3t')")
    conns = {name: psycopg.connect(f"{history_track_dsn} user=htx_{name}", autocommit=True)
             for name in ("mallory", "app", "auditor")}
    conns["mallory"].execute("SET search_path = m, public")
    conns["mallory"].execute(TRAPS)
    try:
        yield conns
    finally:
        for c in conns.values():
            c.close()
        assert rows(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = 'htx_mallory'") == [(False,)]
        conn.execute("ALTER ROLE htx_mallory NOSUPERUSER")
        conn.execute("DROP SCHEMA m CASCADE; DROP TABLE public.secret; DROP OWNED BY htx_mallory, htx_app, htx_auditor CASCADE;"
                     " DROP ROLE htx_mallory, htx_app, htx_auditor")


def pwned(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """Every run of the owner's code with privileges beyond its own and the
    other roles' (as history_track, a superuser here), and whether the owner
    became superuser."""
    return rows(conn, "SELECT who, what FROM m.log WHERE who NOT IN ('htx_mallory', 'htx_app', 'htx_auditor')") + [
        r for r in rows(conn, "SELECT rolname FROM pg_roles WHERE rolname = 'htx_mallory' AND rolsuper")]


def refused(c: psycopg.Connection[Any], stmt: str, state: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as info:
        c.execute(stmt)
        pytest.fail(f"not refused: {stmt}")
    assert info.value.sqlstate == state, f"{stmt}: {info.value.sqlstate} {info.value}"
    return info.value


# -- Table owners: no code of theirs runs with history_track's privileges ------

def test_condition_text_never_runs_as_sql(conn, roles):
    mallory = roles["mallory"]
    mallory.execute("CREATE TABLE m.t (id int PRIMARY KEY, v text)")
    for condition, state in [
        ("true); ALTER ROLE htx_mallory SUPERUSER; SELECT (true", "42601"),
        ("true); DROP TABLE public.secret; SELECT (true", "42601"),
        ("true) $$; ALTER ROLE htx_mallory SUPERUSER; --", "42601"),
        ("true /* ; */ AND $q$;$q$ = ';' AND E'\\';' <> ''", None),   # semicolons inside quotes and comments are data
        ("true)) OR ((true", "42601"),
        ("true) OR (SELECT count(*) FROM public.secret) > 0 OR (true", "0A000"),
        ("(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)", "0A000"),
    ]:
        mallory.execute("DROP FUNCTION IF EXISTS m.noop()")
        call = "SELECT track_table('m.t', label => 'x', condition => %s)"
        if state is None:
            mallory.execute(call, [condition])
            mallory.execute("SELECT untrack_table('m.t', label => 'x')")
        else:
            with pytest.raises(psycopg.Error) as info:
                mallory.execute(call, [condition])
            assert info.value.sqlstate == state, condition
    assert rows(conn, "SELECT count(*) FROM public.secret") == [(1,)]
    assert pwned(conn) == []


@pytest.mark.parametrize(("condition", "why"), [
    ("m.pwn(NEW.id)", "calls m.pwn(anyelement)"),
    ("NEW.id::m.d > 0", "makes a value of type m.d"),
    ("'{1}'::m.d[] IS NOT NULL", "makes a value of type m.d[]"),
    ("'(1,x)'::m.pair IS NOT NULL", "makes a value of type m.pair"),
    ("ROW(NEW.id, 'x')::m.pair IS NOT NULL", "makes a value of type m.d"),
    ("'ok'::m.mood::text = 'x'", "calls m.mood_text(m.mood)"),
    ("'ok'::m.mood = 1", "calls m.mood_int(m.mood)"),
    ("to_json('ok'::m.mood) IS NOT NULL", "calls to_json(anyelement)"),
    ("NEW.v || 'ok'::m.mood = 'x'", None),            # ambiguous, thanks to the owner's casts: a parse error
    ("quote_literal('ok'::m.mood) = 'x'", None),
    ("NEW.v || 'ok'::m.mood::text = 'x'", "calls m.mood_text(m.mood)"),
    ("quote_literal('ok'::m.mood::text) = 'x'", "calls m.mood_text(m.mood)"),
    ("NEW.v || NEW.id = 'x'", "calls textanycat(text,anynonarray)"),
    ("row_to_json(NEW) IS NOT NULL", "calls row_to_json(record)"),
    ("jsonb_populate_record(NULL::m.pair, '{\"a\": 1}') IS NOT NULL", "calls jsonb_populate_record(anyelement,jsonb)"),
    ("NEW.id OPERATOR(m.===) 1", "calls m.int_eq(integer,integer)"),
    ("NOT (NEW.id OPERATOR(m.====) 1)", "calls m.int_ne(integer,integer)"),   # its negator's function
    ("pg_catalog.table_to_xml('public.secret'::regclass, true, false, '') IS NOT NULL", "calls table_to_xml"),
    ("pg_catalog.query_to_xml('SELECT * FROM public.secret', true, false, '') IS NOT NULL", "calls query_to_xml"),
    ("pg_catalog.pg_read_file('/etc/passwd') <> ''", "calls pg_read_file"),
    ("pg_catalog.current_setting('data_directory') <> ''", "calls current_setting"),
    ("has_table_privilege('public.secret', 'SELECT')", "calls has_table_privilege"),
    ("nextval('m.s') > 0", "calls nextval"),
    ("pg_catalog.set_config('history_track.label', 'revert', true) = 'revert'", "calls set_config"),
    ("pg_sleep(1) IS NOT NULL", "calls pg_sleep"),
    ("txid_current() > 0", "calls txid_current"),
    ("NEW.id IN (SELECT x FROM m.secret_of_mallory)", "contains a subquery"),
    ("EXISTS (SELECT FROM pg_authid)", "contains a subquery"),
    ("count(*) > 0", "aggregate"),
])
def test_conditions_may_not_run_or_read_anything_but_their_rows(conn, roles, condition, why):
    mallory = roles["mallory"]
    mallory.execute("CREATE TABLE m.t (id int PRIMARY KEY, v text); CREATE SEQUENCE m.s")
    call = f"SELECT track_table('m.t', label => 'x', condition => $c${condition}$c$)"
    if why is None:
        with pytest.raises(psycopg.Error) as info:
            mallory.execute(call)
        assert info.value.sqlstate.startswith("42"), info.value
    else:
        error = refused(mallory, call, "0A000")
        assert why in error.diag.message_primary
        assert error.diag.message_hint
    # Parsing ran as mallory, if anything ran; nothing as history_track.
    assert pwned(conn) == []
    assert rows(conn, "SELECT count(*) FROM history_track.tracker") == [(0,)]


def test_allowed_conditions_work_and_are_stored_as_postgresql_prints_them(conn, roles):
    mallory = roles["mallory"]
    mallory.execute("CREATE TABLE m.t (id int PRIMARY KEY, v text, at timestamptz, mood m.mood, k m.d)")
    for label, condition in [
        ("paid", "OLD.v IS DISTINCT FROM NEW.v AND NEW.v = 'paid'"),
        ("recent", "NEW.at > now() - interval '1 day' AND date_trunc('day', NEW.at) <= current_date"),
        ("happy", "NEW.mood = 'happy'"),   # an owner's enum is seen as its text form
        ("big", "NEW.k > 10 AND lower(NEW.v) ~ '^p' AND NEW.v IN ('paid', 'payed')"),
    ]:
        mallory.execute("SELECT track_table('m.t', label => %s, operations => '{update}', condition => %s)", [label, condition])
    assert rows(conn, "SELECT label, condition FROM history_trackers ORDER BY label") == [
        ("big", "(((new).k > 10) AND (lower((new).v) ~ '^p'::text) AND ((new).v = ANY (ARRAY['paid'::text, 'payed'::text])))"),
        ("happy", "((new).mood = 'happy'::text)"),
        ("paid", "(((old).v IS DISTINCT FROM (new).v) AND ((new).v = 'paid'::text))"),
        ("recent", "(((new).at > (now() - '1 day'::interval)) AND (date_trunc('day'::text, (new).at) <= CURRENT_DATE))"),
    ]
    mallory.execute("INSERT INTO m.t VALUES (1, 'new', now(), 'sad', 20)")
    mallory.execute("UPDATE m.t SET v = 'paid', mood = 'happy'")
    assert rows(conn, "SELECT pgh_label FROM m.t_event ORDER BY pgh_label") == [("big",), ("happy",), ("paid",), ("recent",)]
    # The owner's CHECK on m.d ran for the owner's own writes only.
    assert pwned(conn) == []
    # A later implicit cast of the owner's cannot change what a stored condition calls.
    mallory.execute("CREATE FUNCTION m.text_mood(text) RETURNS m.mood LANGUAGE sql AS $$ SELECT CASE WHEN m.pwn($1) THEN 'ok'::m.mood END $$;"
                    " CREATE CAST (text AS m.mood) WITH FUNCTION m.text_mood(text) AS IMPLICIT")
    with psycopg.connect(conn.info.dsn, autocommit=True) as fresh:   # a new session plans the triggers afresh
        fresh.execute("UPDATE m.t SET v = 'payed', mood = 'ok'")
    assert pwned(conn) == []
    assert rows(conn, "SELECT count(*) FROM m.t_event WHERE pgh_label = 'big'") == [(2,)]


def test_owner_types_run_no_owner_code_when_history_is_written_or_read(conn, roles):
    """Domains (and arrays and composites of them) anywhere in the table, enums
    and composites with casts to json and text: the triggers, history_events,
    the hash chain, prune and baseline run none of the owner's code."""
    mallory, app = roles["mallory"], roles["app"]
    mallory.execute("""
        CREATE TABLE m.t (id m.d PRIMARY KEY, name m.dt, mood m.mood, moods m.mood[], pair m.pair, ks m.d[], note text);
        GRANT SELECT, INSERT, UPDATE, DELETE ON m.t TO htx_app;
        SELECT track_table('m.t', baseline => true);
        SELECT start_hash_chain('m.t');
        CREATE TABLE m.c (a m.d, b m.mood, PRIMARY KEY (a, b));
        GRANT SELECT, INSERT, UPDATE, DELETE ON m.c TO htx_app;
        SELECT track_table('m.c');
    """)
    app.execute("INSERT INTO m.t VALUES (1, 'one', 'ok', '{sad,ok}', '(1,x)', '{1,2}', 'n')")
    app.execute("UPDATE m.t SET id = 2, mood = 'happy', pair = '(2,y)'")
    app.execute("INSERT INTO m.c VALUES (1, 'ok')")
    app.execute("UPDATE m.c SET b = 'sad'")
    app.execute("DELETE FROM m.c")
    # The writer ran the owner's CHECKs for its own values (that is PostgreSQL); history_track ran none.
    assert {w for w, _ in rows(conn, "SELECT who, what FROM m.log")} <= {"htx_app", "htx_mallory"}
    app_runs = rows(conn, "SELECT count(*) FROM m.log")
    # The event table holds no type of the owner's.
    assert rows(conn, """SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
                         WHERE attrelid = 'm.t_event'::regclass AND attnum > 0 AND attname !~ '^pgh_(id|created|label|operation|context)'
                         ORDER BY attnum""") == [
        ("pgh_obj_id", "integer"), ("pgh_old_obj_id", "integer"), ("pgh_statement_id", "bigint"),
        ("id", "integer"), ("name", "text"), ("mood", "text"), ("moods", "text[]"), ("pair", "text"),
        ("ks", "integer[]"), ("note", "text")]
    assert rows(conn, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                      " WHERE attrelid = 'm.c_event'::regclass AND attname = 'pgh_obj_id'") == [("jsonb",)]
    # Read as a superuser: no cast to json or text of the owner's runs.
    conn.execute("SELECT * FROM history_events()")
    conn.execute("SELECT * FROM history_events('m.t', key => '2')")
    conn.execute("SELECT * FROM history_events('m.c', key => '[1, \"sad\"]')")
    assert conn.execute("SELECT verified, problem FROM verify_history('m.t')").fetchone() == (2, None)
    conn.execute("SELECT prune_history('m.t', now())")
    conn.execute("SELECT track_table('m.t', baseline => true)")
    assert rows(conn, "SELECT data FROM history_events('m.t') WHERE pgh_operation = 'UPDATE'") == [
        ({"id": 2, "ks": [1, 2], "mood": "happy", "name": "one", "note": "n", "pair": "(2,y)", "moods": ["sad", "ok"]},)]
    assert pwned(conn) == []
    assert rows(conn, "SELECT count(*) FROM m.log") == app_runs


def test_history_as_of_runs_the_owners_type_code_only_as_its_caller(conn, roles):
    mallory, auditor = roles["mallory"], roles["auditor"]
    mallory.execute("""
        CREATE TABLE m.t (id m.d PRIMARY KEY, mood m.mood);
        SELECT track_table('m.t');
        INSERT INTO m.t VALUES (1, 'ok');
        GRANT SELECT ON m.t_event TO htx_auditor;
        TRUNCATE m.log;
    """)
    assert auditor.execute("SELECT * FROM history_as_of(NULL::m.t, now())").fetchall() == [(1, "ok")]
    # The domain's CHECK ran, as the caller: that is what rebuilding a value of the domain means.
    assert rows(conn, "SELECT DISTINCT who FROM m.log") == [("htx_auditor",)]
    assert rows(conn, "SELECT proname FROM pg_proc WHERE proname IN ('history_as_of', 'history_events',"
                      " 'history_context_events', 'revert_row', 'revert_table', 'track_table', 'record_history_event')"
                      " AND prosecdef") == []


# -- Table owners cannot silence recording ----------------------------------------

def test_owner_cannot_silence_recording(conn, roles):
    mallory, app = roles["mallory"], roles["app"]
    mallory.execute("""
        CREATE TABLE m.t (id int PRIMARY KEY, v text);
        GRANT SELECT, INSERT, UPDATE, DELETE ON m.t TO htx_app;
        SELECT track_table('m.t');
        CREATE TABLE m.p (id int, v text);
        CREATE TABLE m.pt (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
    """)
    attempts = [
        ("SET history_track.following = 'on'; ALTER TABLE m.t DISABLE TRIGGER history_track_insert", "55000"),
        ("SET history_track.ddl_before = '{}'; ALTER TABLE m.t DISABLE TRIGGER history_track_update", "55000"),
        ("ALTER TABLE m.t DISABLE TRIGGER USER", "55000"),
        ("ALTER TABLE m.t ENABLE REPLICA TRIGGER history_track_delete", "55000"),
        ("ALTER TABLE m.t ENABLE ALWAYS TRIGGER history_track_update", "55000"),
        ("ALTER TRIGGER history_track_update ON m.t RENAME TO zz", "55000"),
        ("DROP TRIGGER history_track_truncate ON m.t", "55000"),
        ("ALTER TABLE m.t INHERIT m.p", "0A000"),
        ("CREATE TABLE m.child () INHERITS (m.t)", "0A000"),
        ("ALTER TABLE m.pt ATTACH PARTITION m.t FOR VALUES FROM (0) TO (100)", "0A000"),
        ("DROP FUNCTION history_track._t1_insert() CASCADE", "42501"),
        ("ALTER TABLE m.t_event DISABLE TRIGGER history_track_append_only", "42501"),
        ("DROP SCHEMA m CASCADE", "42501"),
        ("SET session_replication_role = replica", "42501"),
        ("SET history_track.label = 'baseline'; INSERT INTO m.t VALUES (9, 'x')", "22023"),
    ]
    for stmt, state in attempts:
        refused(mallory, stmt, state)
        mallory.execute("RESET ALL")
    app.execute("INSERT INTO m.t VALUES (1, 'a')")
    app.execute("UPDATE m.t SET v = 'b'")
    app.execute("DELETE FROM m.t")
    mallory.execute("INSERT INTO m.t VALUES (2, 'c')")
    mallory.execute("TRUNCATE m.t")
    assert rows(conn, "SELECT pgh_operation, id, v FROM m.t_event ORDER BY pgh_id") == [
        ("INSERT", 1, "a"), ("UPDATE", 1, "b"), ("DELETE", 1, "b"), ("INSERT", 2, "c"), ("TRUNCATE", 2, "c")]
    assert rows(conn, "SELECT * FROM check_history()") == []
    # Trackers of an inheritance parent or child are refused too, at track_table.
    mallory.execute("CREATE TABLE m.q (id int PRIMARY KEY); CREATE TABLE m.q1 () INHERITS (m.q)")
    error = refused(mallory, "SELECT track_table('m.q')", "0A000")
    assert "inheritance" in error.diag.message_primary


def test_check_history_reports_what_a_superuser_switched_off(conn, roles):
    mallory = roles["mallory"]
    mallory.execute("CREATE TABLE m.t (id int PRIMARY KEY); SELECT track_table('m.t'); SELECT start_hash_chain('m.t')")
    assert rows(conn, "SELECT * FROM check_history()") == []
    conn.execute("ALTER EVENT TRIGGER history_track_ddl_end DISABLE")
    conn.execute("ALTER TABLE m.t DISABLE TRIGGER history_track_insert")   # (no event trigger to refuse it now)
    conn.execute("ALTER TABLE m.t_event DISABLE TRIGGER USER")
    problems = [p for _, p in rows(mallory, "SELECT * FROM check_history()")]
    conn.execute("ALTER TABLE m.t_event ENABLE TRIGGER USER; ALTER TABLE m.t ENABLE TRIGGER history_track_insert;"
                 " ALTER EVENT TRIGGER history_track_ddl_end ENABLE")
    assert problems == [
        "its event table m.t_event has no enabled append-only guard",
        "its event table m.t_event is hash-chained, but the chain trigger is missing or disabled",
        "the insert history trigger of m.t is disabled",
        "the event trigger history_track_ddl_end is disabled",
    ]
    assert rows(conn, "SELECT * FROM check_history()") == []


# -- ALTER TABLE racing track_table and untrack_table: two sessions -------------

def _blocked(conn: psycopg.Connection[Any], pid: int) -> bool:
    for _ in range(200):
        if rows(conn, "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid]) == [("Lock",)]:
            return True
        time.sleep(0.02)
    return False


def _in_background(dsn: str, statements: str) -> tuple[threading.Thread, list[BaseException], list[int]]:
    errors: list[BaseException] = []
    pids: list[int] = []
    ready = threading.Event()

    def run() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                pids.append(c.info.backend_pid)
                ready.set()
                c.execute(statements)
        except BaseException as exc:   # noqa: BLE001 - reported by the test
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=run)
    thread.start()
    ready.wait(10)
    return thread, errors, pids


@pytest.mark.parametrize("alter", [
    "ALTER TABLE r RENAME COLUMN v TO w",
    "ALTER TABLE r ADD COLUMN extra text DEFAULT NULL",
    "ALTER TABLE r ALTER COLUMN v TYPE varchar(20)",
])
def test_alter_table_waiting_for_track_table_is_followed(conn, history_track_dsn, alter):
    conn.execute("CREATE TABLE r (id int PRIMARY KEY, v text)")
    with psycopg.connect(history_track_dsn) as tracker:      # a transaction left open
        tracker.execute("SELECT track_table('r')")
        tracker.execute("SELECT track_table('r', label => 'v_set', operations => '{update}', condition => 'NEW.v IS NOT NULL')")
        thread, errors, pids = _in_background(history_track_dsn, alter)
        assert _blocked(conn, pids[0])
        tracker.commit()
    thread.join(30)
    assert errors == []
    column = rows(conn, "SELECT attname FROM pg_attribute WHERE attrelid = 'r'::regclass AND attnum = 2")[0][0]
    conn.execute(f"INSERT INTO r (id, {column}) VALUES (1, 'a')")
    conn.execute(f"UPDATE r SET {column} = 'b'")
    if "extra" in alter:
        conn.execute("UPDATE r SET extra = 'e'")
        assert rows(conn, "SELECT extra FROM r_event ORDER BY pgh_id") == [(None,), (None,), (None,), ("e",), ("e",)]
    assert rows(conn, f"SELECT pgh_label, {column} FROM r_event ORDER BY pgh_id")[:3] == [
        ("insert", "a"), ("v_set", "b"), ("update", "b")]
    assert rows(conn, "SELECT * FROM check_history()") == []
    assert rows(conn, "SELECT * FROM history_as_of(NULL::r, now())") == rows(conn, "SELECT * FROM r")


def test_track_table_waiting_for_alter_table_sees_the_table_as_altered(conn, history_track_dsn):
    conn.execute("CREATE TABLE r (id int PRIMARY KEY, v text)")
    with psycopg.connect(history_track_dsn) as alterer:
        alterer.execute("ALTER TABLE r RENAME COLUMN v TO w")
        thread, errors, pids = _in_background(
            history_track_dsn, "SELECT track_table('r', label => 'w_set', operations => '{update}', condition => 'NEW.w IS NOT NULL');"
                               " SELECT track_table('r')")
        assert _blocked(conn, pids[0])
        alterer.commit()
    thread.join(30)
    assert errors == []
    conn.execute("INSERT INTO r VALUES (1, 'a'); UPDATE r SET w = 'b'")
    assert rows(conn, "SELECT pgh_label, w FROM r_event ORDER BY pgh_id") == [("insert", "a"), ("w_set", "b"), ("update", "b")]


def test_alter_table_waiting_for_untrack_table_is_not_followed_into_a_dead_table(conn, history_track_dsn):
    conn.execute("CREATE TABLE r (id int PRIMARY KEY, v text); SELECT track_table('r')")
    with psycopg.connect(history_track_dsn) as untracker:
        untracker.execute("SELECT untrack_table('r')")
        thread, errors, pids = _in_background(history_track_dsn, "ALTER TABLE r RENAME COLUMN v TO w")
        assert _blocked(conn, pids[0])
        untracker.commit()
    thread.join(30)
    assert errors == []
    conn.execute("INSERT INTO r VALUES (1, 'a')")
    assert rows(conn, "SELECT count(*) FROM r_event") == [(0,)]
    conn.execute("SELECT track_table('r')")      # the history's column is renamed when tracking resumes
    conn.execute("UPDATE r SET w = 'b'")
    assert rows(conn, "SELECT pgh_operation, w FROM r_event") == [("UPDATE", "b")]


def test_detach_partition_concurrently_is_followed(conn, history_track_dsn):
    conn.execute("""
        CREATE TABLE pt (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
        CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (10);
        CREATE TABLE pt2 PARTITION OF pt FOR VALUES FROM (10) TO (20);
        SELECT track_table('pt');
        INSERT INTO pt VALUES (1, 'a'), (11, 'b');
    """)
    conn.execute("ALTER TABLE pt DETACH PARTITION pt2 CONCURRENTLY")
    conn.execute("INSERT INTO pt2 VALUES (12, 'not pt''s')")
    conn.execute("INSERT INTO pt VALUES (2, 'c')")
    assert rows(conn, "SELECT pgh_label, pgh_operation, id FROM pt_event ORDER BY pgh_id") == [
        ("insert", "INSERT", 1), ("insert", "INSERT", 11), ("baseline", "DELETE", 11), ("insert", "INSERT", 2)]
    assert rows(conn, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'pt2'::regclass AND NOT tgisinternal") == [(0,)]
    assert rows(conn, "SELECT * FROM history_as_of(NULL::pt, now()) ORDER BY id") == rows(conn, "SELECT * FROM pt ORDER BY id")
    conn.execute("ALTER TABLE pt ATTACH PARTITION pt2 FOR VALUES FROM (10) TO (20)")
    assert rows(conn, "SELECT * FROM history_as_of(NULL::pt, now()) ORDER BY id") == rows(conn, "SELECT * FROM pt ORDER BY id")


# -- Any column name at all ---------------------------------------------------------

NAMES = list(string.ascii_lowercase) + ["old", "new", "select", "from", "order", "user", "table", "row",
                                         "ctid_", "A b", 'x"y', "ümlaut", "é" * 31, "n" * 63]


def test_any_column_name_works_everywhere(conn):
    cols = [sql.Identifier(n) for n in NAMES]
    conn.execute(sql.SQL("CREATE TABLE weird ({} int PRIMARY KEY, {})").format(
        cols[0], sql.SQL(", ").join(sql.SQL("{} text").format(c) for c in cols[1:])))
    conn.execute("SELECT track_table('weird')")
    conn.execute("SELECT track_table('weird', label => 'e_set', operations => '{update}', condition => 'NEW.e IS DISTINCT FROM OLD.e AND NEW.n = ''n''')")
    conn.execute("SELECT start_hash_chain('weird')")
    values = sql.SQL(", ").join(sql.Literal(n[:1]) for n in NAMES[1:])
    conn.execute(sql.SQL("INSERT INTO weird VALUES (1, {})").format(values))
    conn.execute("UPDATE weird SET e = 'E', p = 'P'")
    conn.execute("UPDATE weird SET a = 2")
    ts = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    conn.execute("DELETE FROM weird")
    assert rows(conn, "SELECT pgh_label, pgh_operation FROM weird_event ORDER BY pgh_id") == [
        ("insert", "INSERT"), ("e_set", "UPDATE"), ("update", "UPDATE"), ("update", "UPDATE"), ("delete", "DELETE")]
    replayed = rows(conn, "SELECT * FROM history_as_of(NULL::weird, %s)", [ts])
    assert replayed == [(2, *[("E" if n == "e" else "P" if n == "p" else n[:1]) for n in NAMES[1:]])]
    events = rows(conn, "SELECT data, diff FROM history_events('weird', key => '2')")
    assert events[3][1] == {"a": [1, 2]}
    assert events[0][0]["e"] == "e" and events[0][0]["p"] == "p" and events[0][0]['x"y'] == "x"
    assert rows(conn, "SELECT verified, problem FROM verify_history('weird')") == [(5, None)]
    assert conn.execute("SELECT revert_row('weird', '2', %s)", [ts]).fetchone() == (1,)
    assert rows(conn, "SELECT * FROM weird") == replayed
    assert conn.execute("SELECT record_history_event('weird', '2', 'seen')").fetchone()[0] > 0
    conn.execute("SELECT prune_history('weird', now())")


# -- Writers ---------------------------------------------------------------------

def test_record_history_event_honours_row_level_security(conn, roles):
    mallory, app = roles["mallory"], roles["app"]
    mallory.execute("""
        CREATE TABLE m.t (id int PRIMARY KEY, tenant text, secret text);
        ALTER TABLE m.t ENABLE ROW LEVEL SECURITY;
        CREATE POLICY mine ON m.t USING (tenant = 'app');
        GRANT SELECT, UPDATE ON m.t TO htx_app;
        INSERT INTO m.t VALUES (1, 'app', 'visible'), (2, 'other', 'hidden');
        SELECT track_table('m.t');
        GRANT SELECT ON m.t_event TO htx_app;
    """)
    assert app.execute("SELECT record_history_event('m.t', '1', 'viewed')").fetchone()[0] > 0
    hidden = refused(app, "SELECT record_history_event('m.t', '2', 'viewed')", "P0002")
    absent = refused(app, "SELECT record_history_event('m.t', '3', 'viewed')", "P0002")
    assert hidden.diag.message_primary.replace("2", "N") == absent.diag.message_primary.replace("3", "N")
    # Handing over a made-up row (or a hidden one, guessed) is refused the same way.
    for call in ["SELECT history_track._record_manual('m.t', 'x', NULL, ROW(2, 'other', 'hidden')::m.t, 'm.t'::regclass, '(0,2)')",
                 "SELECT history_track._record_manual('m.t', 'x', NULL, ROW(1, 'app', 'forged')::m.t, 'm.t'::regclass, '(0,1)')"]:
        refused(app, call, "42501")     # (who is calling? see _caller())
        refused(app, "SELECT history_track._enter(); " + call, "22023")
    assert rows(conn, "SELECT pgh_label, id, secret FROM m.t_event") == [("viewed", 1, "visible")]


def test_context_is_limited_and_malformed_context_named(conn, roles):
    mallory = roles["mallory"]
    mallory.execute("CREATE TABLE m.t (id int PRIMARY KEY); SELECT track_table('m.t')")
    big = '{"blob": "' + "x" * 70000 + '"}'
    with pytest.raises(psycopg.errors.ProgramLimitExceeded) as info:
        with mallory.transaction():
            mallory.execute("SELECT set_config('history_track.context', %s, true)", [big])
            mallory.execute("INSERT INTO m.t SELECT generate_series(1, 100)")
    assert "history_track.context is too large" in info.value.diag.message_primary
    assert "history_track.config.max_context_bytes" in info.value.diag.message_detail
    refused(mallory, f"SELECT set_history_context('{big}')", "54000")
    refused(mallory, "INSERT INTO history_track.config (max_context_bytes) VALUES (1000000000)", "42501")
    with pytest.raises(psycopg.errors.InvalidTextRepresentation) as info:
        with mallory.transaction():
            mallory.execute("SELECT set_config('history_track.context', '{\"user\": ', true)")
            mallory.execute("INSERT INTO m.t VALUES (1)")
    assert info.value.diag.message_primary == "history_track.context is not valid JSON"
    # A superuser may raise the limit.
    conn.execute("INSERT INTO history_track.config (max_context_bytes) VALUES (200000)")
    with mallory.transaction():
        mallory.execute("SELECT set_config('history_track.context', %s, true)", [big])
        mallory.execute("INSERT INTO m.t VALUES (1)")
    assert rows(conn, "SELECT length(pgh_context ->> 'blob') FROM m.t_event") == [(70000,)]
    conn.execute("DELETE FROM history_track.config")


# -- Removing history: logged or refused ------------------------------------------

def test_every_removal_of_history_is_logged_or_refused(conn, roles):
    mallory = roles["mallory"]
    mallory.execute("""
        CREATE TABLE m.a (id int PRIMARY KEY); SELECT track_table('m.a'); INSERT INTO m.a VALUES (1), (2);
        CREATE TABLE m.b (id int PRIMARY KEY); SELECT track_table('m.b'); INSERT INTO m.b VALUES (1);
    """)
    # The schema's owner may drop what the schema holds; not history.
    refused(mallory, "DROP SCHEMA m CASCADE", "42501")
    refused(mallory, "DROP TABLE m.a, m.a_event", "42501")
    mallory.execute("SELECT prune_history('m.a', now())")
    mallory.execute("SELECT untrack_table('m.a', drop_events => true)")
    # A superuser can drop an event table (of a table it untracked or dropped); it is logged.
    conn.execute("SELECT untrack_table('m.b'); DROP TABLE m.b_event")
    assert rows(mallory, """SELECT action, table_text, event_text, before IS NULL, events_deleted, pruned_by
                             FROM history_track.prune_log ORDER BY pruned_at, action""") == [
        ("prune", "m.a", "m.a_event", False, 0, "htx_mallory"),
        ("drop_events", "m.a", "m.a_event", True, 2, "htx_mallory"),
        ("drop_table", "m.b", "m.b_event", True, -1, "postgres"),
    ]
    refused(mallory, "DELETE FROM history_track.prune_log", "42501")


# -- The SECURITY DEFINER steps anyone may call directly ----------------------------

def test_internal_entry_points_check_everything_themselves(conn, roles):
    mallory, app = roles["mallory"], roles["app"]
    mallory.execute("CREATE TABLE m.t (id int PRIMARY KEY, v text); SELECT track_table('m.t');"
                    " GRANT SELECT, INSERT, UPDATE ON m.t TO htx_app")
    # Not the owner: refused before anything happens (and without the row
    # naming the caller that the public functions write first, refused anyway).
    for enter in ["", "SELECT history_track._enter(); "]:
        refused(app, enter + "SELECT history_track._track_prepare('m.t', 'x', NULL, false, NULL, NULL, NULL, NULL)", "42501")
        refused(app, enter + "SELECT history_track._track_finish('m.t', 'x', NULL, NULL, NULL, NULL, NULL, NULL, false)", "42501")
    # The owner, handing over a "parsed condition" that is anything but: its tree is checked.
    row = rows(conn, "SELECT '_t' || table_id || '_row' FROM history_track.tracked_table")[0][0]
    mallory.execute(f"CREATE FUNCTION m.fake(old history_track.{row}, new history_track.{row}) RETURNS boolean"
                    " LANGUAGE sql RETURN m.pwn(1)")
    mallory.execute(f"CREATE FUNCTION m.fake2(old history_track.{row}, new history_track.{row}) RETURNS boolean"
                    " LANGUAGE plpgsql AS $$ BEGIN RETURN m.pwn(1); END $$")
    for fake in ["m.fake", "m.fake2"]:
        refused(mallory, f"SELECT history_track._enter(); SELECT history_track._track_finish('m.t', 'x', '{{update}}', '{fake}(history_track.{row}, history_track.{row})',"
                         " NULL, NULL, NULL, NULL, false)", "0A000")
    # The internals that write are not for anyone.
    for call in ["SELECT history_track._generate('m.t')", "SELECT history_track._record_baseline('m.t')",
                 "SELECT history_track._log_removal('m.t', 'm.t_event', NULL, 0, 'prune')"]:
        refused(mallory, call, "42501")
    mallory.execute("UPDATE m.t SET v = 'x'")
    assert pwned(conn) == []


def test_another_roles_security_definer_function_acts_as_that_role(conn, roles):
    """A SECURITY DEFINER function of mallory's, run in a more privileged
    session (a superuser's here; a trigger function of a table the session
    writes, say), has mallory's rights in history_track too, never the
    session's: no confused deputy."""
    mallory = roles["mallory"]
    conn.execute("CREATE TABLE public.victim (id int PRIMARY KEY); SELECT track_table('public.victim');"
                 " INSERT INTO public.victim VALUES (1)")
    mallory.execute("""
        CREATE FUNCTION m.deputy(what text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
            AS $$ BEGIN EXECUTE what; END $$;
        GRANT EXECUTE ON FUNCTION m.deputy(text) TO PUBLIC;
        CREATE TABLE m.gone (id int PRIMARY KEY);
        SELECT track_table('m.gone');
        DROP TABLE m.gone;      -- its history stays, in m.gone_event
    """)
    for stmt, state in [
        ("SELECT untrack_table('public.victim')", "42501"),
        ("SELECT untrack_table('public.victim', drop_events => true)", "42501"),
        ("SELECT prune_history('public.victim', now())", "42501"),
        ("SELECT start_hash_chain('public.victim')", "42501"),
        ("SELECT track_table('public.victim', label => 'x', operations => '{insert}')", "42501"),
        ("SELECT record_history_event('public.victim', 1, 'forged')", "42501"),
        ("SELECT history_track._untrack_table('public.victim', NULL, true)", "42501"),
        ("SELECT history_track._prune_history('public.victim', now())", "42501"),
        ("SELECT history_track._start_hash_chain('public.victim')", "42501"),
        ("SELECT history_track._enter(); SELECT history_track._untrack_table('public.victim', NULL, true)", "42501"),
        ("INSERT INTO history_track.acting (who) VALUES (session_user)", "23514"),
        ("INSERT INTO history_track.acting (pid) VALUES (0)", "23514"),
        ("INSERT INTO history_track.acting (id) OVERRIDING SYSTEM VALUE VALUES (9000000000000000001)", "42501"),
        ("UPDATE history_track.acting SET who = session_user", "42501"),
        ("DROP TABLE m.gone_event", "42501"),
    ]:
        refused(conn, f"SELECT m.deputy($sql${stmt}$sql$)", state)
    assert rows(conn, "SELECT pgh_label, id FROM public.victim_event") == [("insert", 1)]
    assert rows(conn, "SELECT count(*) FROM history_track.prune_log") == [(0,)]
    assert rows(conn, "SELECT count(*) FROM history_track.chain") == [(0,)]
    assert rows(conn, "SELECT count(*) FROM history_track.acting") == [(0,)]
    assert rows(conn, "SELECT * FROM check_history()") == []
    # The session's own calls act for the session's role, as always.
    conn.execute("SELECT untrack_table('public.victim', drop_events => true); DROP TABLE public.victim")
    assert rows(conn, "SELECT action, table_text, pruned_by = current_user FROM history_track.prune_log") == [
        ("drop_events", "public.victim", True)]


def test_no_role_can_stand_in_history_track_acting_for_another(conn, roles):
    """Rows of history_track.acting take the next id, name the inserting role,
    and are removed exactly by the call that wrote them: not even the
    extension owner's row that history_track's own DDL writes (through the
    sql_drop event trigger) outlives it."""
    mallory, app = roles["mallory"], roles["app"]
    conn.execute("CREATE TABLE public.victim (id int PRIMARY KEY); SELECT track_table('public.victim')")
    victim = rows(conn, "SELECT 'public.victim'::regclass::oid")[0][0]
    mallory.execute("CREATE TABLE m.t (id int PRIMARY KEY, v text); CREATE TABLE m.u (id int PRIMARY KEY)")
    # Rows left committed by direct inserts, of every role: harmless.
    app.execute("INSERT INTO history_track.acting DEFAULT VALUES")
    mallory.execute("INSERT INTO history_track.acting DEFAULT VALUES")
    refused(mallory, "INSERT INTO history_track.acting (id) OVERRIDING SYSTEM VALUE VALUES (9000000000000000001)", "42501")
    conn.execute("GRANT SELECT ON history_track.acting TO htx_mallory")     # to look
    with mallory.transaction():
        # history_track's own DDL in this transaction: conditions compiled,
        # triggers written and dropped, a table untracked with its history.
        mallory.execute("SELECT track_table('m.t'); SELECT track_table('m.t', label => 'x', operations => '{update}',"
                        " condition => 'NEW.v IS NOT NULL'); SELECT untrack_table('m.t', label => 'x');"
                        " SELECT track_table('m.u'); SELECT untrack_table('m.u', drop_events => true)")
        assert rows(mallory, "SELECT who FROM history_track.acting WHERE pid = pg_backend_pid()"
                             " AND xid = pg_current_xact_id()") == []
        for call in [f"SELECT history_track._untrack_table({victim}::regclass, NULL, true)",
                     f"SELECT history_track._untrack_table({victim}::regclass, NULL, false)",
                     f"SELECT history_track._prune_history({victim}::regclass, now())",
                     f"SELECT history_track._start_hash_chain({victim}::regclass)"]:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                with mallory.transaction():
                    mallory.execute(call)
    conn.execute("REVOKE SELECT ON history_track.acting FROM htx_mallory")
    assert rows(conn, "SELECT count(*) FROM history_track.tracker WHERE table_name = 'public.victim'::regclass") == [(3,)]
    assert rows(conn, "SELECT count(*) FROM history_track.prune_log WHERE table_name = 'public.victim'::regclass") == [(0,)]
    conn.execute("SELECT untrack_table('public.victim', drop_events => true); DROP TABLE public.victim")


def test_the_extension_cannot_be_dropped_with_its_schema(conn, roles):
    """The owner of the schema history_track is installed in (public: in
    PostgreSQL 15 and later the database owner's) cannot drop it, with the
    extension and every history trigger in it, while tables are tracked."""
    mallory = roles["mallory"]
    schema, owner = rows(conn, "SELECT n.nspname, n.nspowner::regrole::text FROM pg_proc AS p"
                               " JOIN pg_namespace AS n ON n.oid = p.pronamespace WHERE p.oid = 'check_history'::regproc")[0]
    mallory.execute("CREATE TABLE m.t (id int PRIMARY KEY); SELECT track_table('m.t')")
    conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO htx_mallory").format(sql.Identifier(schema)))
    try:
        for stmt in [f"DROP SCHEMA {schema} CASCADE", f'DROP SCHEMA IF EXISTS m, "{schema}" CASCADE',
                     f"DROP SCHEMA {schema}", "DROP OWNED BY htx_mallory CASCADE", "DROP OWNED BY CURRENT_USER",
                     f"SELECT 1; DROP SCHEMA {schema} CASCADE",
                     f"DO $$ BEGIN EXECUTE 'DROP SCHEMA {schema} CASCADE'; END $$"]:
            refused(mallory, stmt, "2BP01")
        # Nor rename it, to drop it under another name, or to let another
        # schema take its name and stand in for history_track's functions.
        database = rows(conn, "SELECT current_database()")[0][0]
        conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO htx_mallory").format(sql.Identifier(database)))
        error = refused(mallory, f"ALTER SCHEMA {schema} RENAME TO {schema}_old", "0A000")
        assert error.diag.message_primary == f"cannot rename schema {schema}: history_track is installed in it"
        conn.execute(sql.SQL("REVOKE CREATE ON DATABASE {} FROM htx_mallory").format(sql.Identifier(database)))
        conn.execute("CREATE SCHEMA other AUTHORIZATION htx_mallory; CREATE TABLE other.x ()")
        mallory.execute("DROP SCHEMA other CASCADE")     # another schema: dropped
        mallory.execute("INSERT INTO m.t VALUES (1)")
        assert rows(conn, "SELECT pgh_operation, id FROM m.t_event") == [("INSERT", 1)]
        assert rows(conn, "SELECT * FROM check_history()") == []
    finally:
        conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(schema), sql.Identifier(owner)))


def test_manual_events_and_reads_run_no_owner_check_code_as_the_caller(conn, roles):
    """record_history_event reads the table with its caller's privileges, and
    plans with constraint_exclusion off: a CHECK constraint of the owner's on
    a partition is not run (as a superuser caller, here). (revert_* write the
    table as their caller, and writing runs the table's CHECKs and triggers
    as any write of the caller's would.)"""
    mallory = roles["mallory"]
    mallory.execute("""
        CREATE FUNCTION m.ipwn() RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN m.pwn(0); END $$;
        CREATE TABLE m.p (id int PRIMARY KEY, x text) PARTITION BY RANGE (id);
        CREATE TABLE m.p1 PARTITION OF m.p FOR VALUES FROM (0) TO (100);
        SELECT track_table('m.p');
        INSERT INTO m.p VALUES (1, 'a');
        UPDATE m.p SET x = 'b';
        ALTER TABLE m.p1 ADD CONSTRAINT c CHECK (m.ipwn() AND id >= 0) NOT VALID;
        DELETE FROM m.log;
    """)
    conn.execute("SET constraint_exclusion = partition")
    conn.execute("SELECT record_history_event('m.p', 1, 'exported')")
    conn.execute("SELECT record_history_event('m.p', '1', 'exported again')")
    assert rows(conn, "SELECT id, x FROM history_as_of(NULL::m.p, now())") == [(1, "b")]
    assert len(rows(conn, "SELECT * FROM history_events('m.p', '1')")) == 4
    conn.execute("RESET constraint_exclusion")    # (planning a query on m.p would run it otherwise)
    assert pwned(conn) == []
    assert rows(conn, "SELECT pgh_label, pgh_operation, x FROM m.p_event ORDER BY pgh_id") == [
        ("insert", "INSERT", "a"), ("update", "UPDATE", "b"), ("exported", "MANUAL", "b"),
        ("exported again", "MANUAL", "b")]


def test_the_indexes_of_an_event_table_stay(conn, roles):
    mallory = roles["mallory"]
    mallory.execute("CREATE TABLE m.t (id int PRIMARY KEY); SELECT track_table('m.t')")
    for index in [r[0] for r in rows(conn, "SELECT indexrelid::regclass::text FROM pg_index"
                                          " WHERE indrelid = 'm.t_event'::regclass AND NOT indisprimary")]:
        refused(mallory, f"DROP INDEX {index}", "42501")
    mallory.execute("SELECT untrack_table('m.t', drop_events => true)")     # with its event table: they go
    assert rows(conn, "SELECT count(*) FROM pg_class WHERE relname LIKE 't_event%'") == [(0,)]


# -- Found by the independent review of 0.3.0's first draft ---------------------------

def test_relation_names_and_labels_never_reach_sql_as_code(conn, roles):
    """A partition named to close a string literal, and a label equal to a
    placeholder a draft replaced by text: TRUNCATE records them as data."""
    mallory = roles["mallory"]
    mallory.execute("""
        CREATE FUNCTION m.vpwn() RETURNS text LANGUAGE sql AS $$ SELECT CASE WHEN m.pwn('truncate'::text) THEN 'x' END $$;
        CREATE TABLE m.inj (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
        CREATE TABLE m."' || m.vpwn() || '" PARTITION OF m.inj FOR VALUES FROM (0) TO (100);
        SELECT track_table('m.inj');
        SELECT track_table('m.inj', label => 'pgh_truncated_table', operations => '{delete}');
        SELECT track_table('m.inj', label => $$'); SELECT m.vpwn(); --$$, operations => '{delete}');
        INSERT INTO m.inj VALUES (1, 'a');
        TRUNCATE m.inj;
    """)
    assert pwned(conn) == []
    assert rows(conn, "SELECT pgh_label, pgh_operation, id FROM m.inj_event ORDER BY pgh_id") == [
        ("insert", "INSERT", 1), ("'); SELECT m.vpwn(); --", "TRUNCATE", 1),
        ("pgh_truncated_table", "TRUNCATE", 1), ("delete", "TRUNCATE", 1)]


@pytest.mark.parametrize("ddl", [
    "CREATE INDEX ON m.t ((id + m.ipwn(0)))",
    "CREATE INDEX ON m.t (id) WHERE id > m.ipwn(0)",
    "CREATE INDEX ON m.t ((id::m.d))",
    "CREATE STATISTICS m.s ON (id + m.ipwn(0)), v FROM m.t",
])
def test_code_postgresql_runs_while_planning_is_refused(conn, roles, ddl):
    """An owner's function in an index, partial-index predicate or statistics
    expression runs (with constant arguments) whenever PostgreSQL plans a
    query on the table; history_track reads tracked tables with its own
    privileges, so such a table is not tracked, and such an object not added."""
    mallory = roles["mallory"]
    mallory.execute("""
        CREATE TABLE m.t (id int PRIMARY KEY, v text);
    """)
    mallory.execute(ddl)
    error = refused(mallory, "SELECT track_table('m.t')", "42501")
    assert "non-superuser owns" in error.diag.message_primary
    mallory.execute("DROP INDEX IF EXISTS m.t_expr_idx, m.t_id_idx, m.t_id_idx1; DROP STATISTICS IF EXISTS m.s")
    mallory.execute("SELECT track_table('m.t')")
    refused(mallory, ddl, "42501")
    # Nor a CHECK constraint's, whatever constraint_exclusion the session asks for.
    mallory.execute("ALTER TABLE m.t ADD CHECK (id > m.ipwn(-1))")
    mallory.execute("INSERT INTO m.t VALUES (1, 'a')")
    with psycopg.connect(mallory.info.dsn, autocommit=True) as fresh:
        fresh.execute("SET constraint_exclusion = on; TRUNCATE m.t")
    conn.execute("SELECT track_table('m.t', baseline => true)")
    assert pwned(conn) == []
    assert rows(conn, "SELECT pgh_operation FROM m.t_event ORDER BY pgh_id") == [("INSERT",), ("TRUNCATE",)]


def test_a_partition_with_the_owners_code_is_not_attached(conn, roles):
    mallory = roles["mallory"]
    mallory.execute("""
        CREATE TABLE m.pa (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
        CREATE TABLE m.pa1 PARTITION OF m.pa FOR VALUES FROM (0) TO (10);
        SELECT track_table('m.pa');
        CREATE TABLE m.pa2 (id int PRIMARY KEY, v text);
        CREATE INDEX ON m.pa2 ((id + m.ipwn(0)));
        INSERT INTO m.pa2 VALUES (11, 'b');
    """)
    refused(mallory, "ALTER TABLE m.pa ATTACH PARTITION m.pa2 FOR VALUES FROM (10) TO (20)", "42501")
    refused(mallory, "CREATE STATISTICS m.s ON (id + m.ipwn(0)), v FROM m.pa1", "42501")
    assert rows(conn, "SELECT * FROM history_as_of(NULL::m.pa, now())") == []
    assert pwned(conn) == []


def test_values_changed_without_dml_are_recorded(conn, roles):
    """ALTER TABLE ... TYPE ... USING, a rewrite to the same type, ADD COLUMN
    with a default or a stored generated column, an enum label renamed, a
    typed table's type altered: history_as_of keeps matching the table."""
    mallory = roles["mallory"]
    mallory.execute("""
        CREATE TYPE m.status AS ENUM ('approved', 'rejected');
        CREATE TYPE m.acct AS (id int, name text);
        CREATE TABLE m.b (id int PRIMARY KEY, v text, s m.status);
        CREATE TABLE m.ty OF m.acct (PRIMARY KEY (id));
        SELECT track_table('m.b'); SELECT track_table('m.ty');
        INSERT INTO m.b VALUES (1, 'x', 'approved'), (2, 'y', 'rejected');
        INSERT INTO m.ty VALUES (1, 'a');
    """)
    same = "SELECT (SELECT array_agg(t ORDER BY t::text) FROM history_as_of(NULL::{0}, now()) AS t) IS NOT DISTINCT FROM (SELECT array_agg(t ORDER BY t::text) FROM {0} AS t)"
    for stmt in [
        "ALTER TABLE m.b ALTER COLUMN id TYPE bigint USING id * 100",
        "ALTER TABLE m.b ALTER COLUMN v TYPE varchar(20) USING 'via varchar'",
        "ALTER TABLE m.b ALTER COLUMN v TYPE text USING 'rewritten'",
        "ALTER TABLE m.b ALTER COLUMN v TYPE text USING upper(v)",
        "ALTER TABLE m.b ADD COLUMN w int DEFAULT 42",
        "ALTER TABLE m.b ADD COLUMN g text GENERATED ALWAYS AS (v || '!') STORED",
        "ALTER TYPE m.status RENAME VALUE 'approved' TO 'tmp'; ALTER TYPE m.status RENAME VALUE 'rejected' TO 'approved';"
        " ALTER TYPE m.status RENAME VALUE 'tmp' TO 'rejected'",
    ]:
        mallory.execute(stmt)
        assert rows(conn, same.format("m.b")) == [(True,)], stmt
    mallory.execute("ALTER TYPE m.acct ADD ATTRIBUTE flag text CASCADE")
    mallory.execute("UPDATE m.ty SET flag = 'set'")
    assert rows(conn, same.format("m.ty")) == [(True,)]
    assert rows(conn, "SELECT pgh_operation, flag FROM m.ty_event ORDER BY pgh_id") == [("INSERT", None), ("UPDATE", "set")]
    mallory.execute("ALTER TYPE m.acct RENAME ATTRIBUTE name TO nom CASCADE")
    mallory.execute("UPDATE m.ty SET nom = 'b'")
    assert rows(conn, same.format("m.ty")) == [(True,)]
    assert rows(conn, "SELECT * FROM check_history()") == []


def test_a_partition_cannot_be_dropped_while_its_tree_is_tracked(conn, roles):
    mallory = roles["mallory"]
    mallory.execute("""
        CREATE TABLE m.pt (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
        CREATE TABLE m.pt1 PARTITION OF m.pt FOR VALUES FROM (0) TO (10);
        CREATE TABLE m.pt2 PARTITION OF m.pt FOR VALUES FROM (10) TO (20);
        SELECT track_table('m.pt');
        INSERT INTO m.pt VALUES (1, 'a'), (11, 'b');
    """)
    refused(mallory, "DROP TABLE m.pt2", "2BP01")
    mallory.execute("ALTER TABLE m.pt DETACH PARTITION m.pt2; DROP TABLE m.pt2")
    assert rows(conn, "SELECT * FROM history_as_of(NULL::m.pt, now())") == [(1, "a")]
    mallory.execute("DROP TABLE m.pt")   # the whole tree: its history stays
    assert rows(conn, "SELECT count(*) FROM m.pt_event") == [(3,)]


def test_truncate_is_refused_where_it_would_not_see_every_row(conn, roles, history_track_dsn):
    mallory, app = roles["mallory"], roles["app"]
    mallory.execute("CREATE TABLE m.tr (id int PRIMARY KEY); SELECT track_table('m.tr');"
                    " GRANT INSERT ON m.tr TO htx_app; INSERT INTO m.tr VALUES (1)")
    with psycopg.connect(f"{history_track_dsn} user=htx_mallory") as rr:
        rr.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        rr.execute("SELECT 1")
        app.execute("INSERT INTO m.tr VALUES (2)")
        with pytest.raises(psycopg.errors.InvalidTransactionState):
            rr.execute("TRUNCATE m.tr")
    mallory.execute("TRUNCATE m.tr")
    assert rows(conn, "SELECT pgh_operation, id FROM m.tr_event ORDER BY pgh_id") == [
        ("INSERT", 1), ("INSERT", 2), ("TRUNCATE", 1), ("TRUNCATE", 2)]


def test_the_history_of_a_dropped_table_stays_until_a_superuser_drops_it(conn, roles):
    mallory = roles["mallory"]
    mallory.execute("CREATE TABLE m.gone (id int PRIMARY KEY, v text); SELECT track_table('m.gone');"
                    " INSERT INTO m.gone VALUES (1, 'evidence'); DROP TABLE m.gone")
    refused(mallory, "DROP TABLE m.gone_event", "42501")
    refused(mallory, "DROP SCHEMA m CASCADE", "42501")
    assert rows(conn, "SELECT v FROM m.gone_event") == [("evidence",)]
    conn.execute("DROP TABLE m.gone_event")
    assert rows(conn, "SELECT action, table_text, event_text FROM history_track.prune_log") == [
        ("drop_table", "m.gone", "m.gone_event")]


def test_a_type_of_an_extension_the_owner_created_is_not_trusted(conn, roles):
    """citext is a trusted extension: its objects belong to a superuser, but
    the role that created it may drop it (and, with CASCADE, what uses it)."""
    mallory = roles["mallory"]
    conn.execute("GRANT CREATE ON DATABASE " + conn.info.dbname + " TO htx_mallory")
    mallory.execute("CREATE EXTENSION citext SCHEMA m")
    mallory.execute("CREATE TABLE m.ci (id int PRIMARY KEY, email m.citext, note text); SELECT track_table('m.ci');"
                    " INSERT INTO m.ci VALUES (1, 'Alice@Example.com', 'n1')")
    assert rows(conn, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                      " WHERE attrelid = 'm.ci_event'::regclass AND attname = 'email'") == [("text",)]
    mallory.execute("DROP EXTENSION citext CASCADE")
    assert rows(conn, "SELECT email, note FROM m.ci_event") == [("Alice@Example.com", "n1")]
    mallory.execute("UPDATE m.ci SET note = 'n2'")
    assert rows(conn, "SELECT pgh_operation, email, note FROM m.ci_event ORDER BY pgh_id") == [
        ("INSERT", "Alice@Example.com", "n1"), ("UPDATE", None, "n2")]
    conn.execute("REVOKE CREATE ON DATABASE " + conn.info.dbname + " FROM htx_mallory")


def test_a_column_added_later_cannot_stand_for_history_tracks_own_names(conn, roles):
    mallory, app = roles["mallory"], roles["app"]
    mallory.execute("CREATE TABLE m.cx (id int PRIMARY KEY, v text); SELECT track_table('m.cx');"
                    " GRANT SELECT, INSERT ON m.cx TO htx_app")
    for stmt in ["ALTER TABLE m.cx ADD COLUMN pgh_ctx_label text",
                 "ALTER TABLE m.cx ADD COLUMN pgh_ctx_id uuid, ADD COLUMN pgh_ctx jsonb",
                 "ALTER TABLE m.cx RENAME COLUMN v TO pgh_label"]:
        refused(mallory, stmt, "42701")
    app.execute("INSERT INTO m.cx VALUES (1, 'a')")
    assert rows(conn, "SELECT pgh_label, pgh_context_id FROM m.cx_event") == [("insert", None)]


def test_rows_lost_by_an_update_across_partitions_fail_the_update(conn, roles):
    mallory, app = roles["mallory"], roles["app"]
    mallory.execute("""
        CREATE TABLE m.mv (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
        CREATE TABLE m.mv1 PARTITION OF m.mv FOR VALUES FROM (0) TO (10);
        CREATE TABLE m.mv2 PARTITION OF m.mv FOR VALUES FROM (10) TO (20);
        CREATE TABLE m.mv3 PARTITION OF m.mv FOR VALUES FROM (20) TO (30);
        CREATE FUNCTION m.swallow() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.v = 'gone' THEN RETURN NULL; END IF; RETURN NEW; END $$;
        CREATE TRIGGER a_swallow BEFORE INSERT ON m.mv3 FOR EACH ROW EXECUTE FUNCTION m.swallow();
        SELECT track_table('m.mv');
        GRANT SELECT, UPDATE ON m.mv TO htx_app;
        INSERT INTO m.mv VALUES (2, 'two'), (11, 'eleven'), (12, 'twelve');
    """)
    refused(app, "UPDATE m.mv SET id = id + 10, v = 'gone' WHERE id = 11", "09000")
    refused(app, "UPDATE m.mv SET id = CASE WHEN id = 2 THEN 22 ELSE id END,"
                 " v = CASE WHEN id = 2 THEN 'gone' ELSE 'z' END WHERE id IN (2, 12)", "09000")
    app.execute("UPDATE m.mv SET id = id + 20 WHERE id = 2")     # a move that arrives
    assert rows(conn, "SELECT * FROM history_as_of(NULL::m.mv, now()) ORDER BY id") == rows(conn, "SELECT * FROM m.mv ORDER BY id")


def test_text_forms_do_not_depend_on_the_writers_settings(conn, roles):
    mallory, app = roles["mallory"], roles["app"]
    mallory.execute("""
        CREATE TYPE m.reading AS (at timestamp, value float8, span interval);
        CREATE TABLE m.sens (id int PRIMARY KEY, r m.reading);
        SELECT track_table('m.sens');
        GRANT INSERT ON m.sens TO htx_app;
    """)
    app.execute("SET DateStyle = 'SQL, DMY'; SET extra_float_digits = -15; SET IntervalStyle = 'sql_standard'")
    app.execute("INSERT INTO m.sens VALUES (1, ROW('2024-02-01 10:00', 3.14159265358979, '1 day 2 hours')::m.reading)")
    assert rows(conn, "SELECT r FROM m.sens_event") == [('("2024-02-01 10:00:00",3.14159265358979,"1 day 02:00:00")',)]
    assert rows(conn, "SELECT * FROM history_as_of(NULL::m.sens, now())") == rows(conn, "SELECT * FROM m.sens")


def test_a_rows_key_does_not_depend_on_the_writers_settings(conn, roles):
    """pgh_obj_id of a composite key is JSON, whose form of a timestamptz,
    interval or bytea follows TimeZone, IntervalStyle and bytea_output; a key
    of the owner's range type is stored as text. Written in two forms, one
    row would be two to the history: a writer could SET TimeZone and have its
    DELETE recorded under another key, the row alive in history_as_of and a
    revert bringing it back. Every form is written with fixed settings."""
    mallory, app = roles["mallory"], roles["app"]
    mallory.execute("""
        CREATE TABLE m.ev (at timestamptz, span interval, tag bytea, v text, PRIMARY KEY (at, span, tag));
        CREATE TYPE m.slot AS RANGE (subtype = timestamptz);
        CREATE TABLE m.booking (during m.slot PRIMARY KEY, who text);
        SELECT track_table('m.ev'); SELECT track_table('m.booking');
        GRANT SELECT, INSERT, UPDATE, DELETE ON m.ev, m.booking TO htx_app;
    """)
    app.execute("SET TimeZone = 'UTC'")
    app.execute(
        "INSERT INTO m.ev VALUES ('2026-01-01 00:00+00', '1 day 2 hours', '\\x0102', 'a'),"
        " ('2026-01-02 00:00+00', '3 days', '\\x03', 'b')"
    )
    app.execute("INSERT INTO m.booking VALUES ('[2026-01-01 09:00+00, 2026-01-01 10:00+00)', 'ann')")
    app.execute(
        "SET TimeZone = 'Asia/Tokyo'; SET IntervalStyle = 'iso_8601'; SET bytea_output = 'escape';"
        " SET DateStyle = 'SQL, DMY'"
    )
    app.execute("UPDATE m.ev SET v = 'b2' WHERE v = 'b'")
    app.execute("DELETE FROM m.ev WHERE v = 'a'")
    app.execute("DELETE FROM m.booking")
    assert rows(conn, "SELECT pgh_operation, pgh_obj_id::text FROM m.ev_event ORDER BY pgh_id") == [
        ("INSERT", '["2026-01-01T00:00:00+00:00", "1 day 02:00:00", "\\\\x0102"]'),
        ("INSERT", '["2026-01-02T00:00:00+00:00", "3 days", "\\\\x03"]'),
        ("UPDATE", '["2026-01-02T00:00:00+00:00", "3 days", "\\\\x03"]'),
        ("DELETE", '["2026-01-01T00:00:00+00:00", "1 day 02:00:00", "\\\\x0102"]'),
    ]
    assert rows(conn, "SELECT pgh_operation, pgh_obj_id FROM m.booking_event ORDER BY pgh_id") == [
        ("INSERT", '["2026-01-01 09:00:00+00","2026-01-01 10:00:00+00")'),
        ("DELETE", '["2026-01-01 09:00:00+00","2026-01-01 10:00:00+00")'),
    ]
    mallory.execute("SET TimeZone = 'America/New_York'; SET IntervalStyle = 'sql_standard'")
    for c in (conn, mallory):  # whoever reads, with whatever settings
        assert rows(c, "SELECT v FROM history_as_of(NULL::m.ev, now())") == [("b2",)]
        assert rows(c, "SELECT count(*) FROM history_as_of(NULL::m.booking, now())") == [(0,)]
    # a manual event and a revert find the row by its key, whatever the caller's settings
    mallory.execute(
        """SELECT record_history_event('m.ev', '["2026-01-02T00:00:00+00:00", "3 days", "\\\\x03"]', 'checked')"""
    )
    mallory.execute(
        """SELECT revert_row('m.ev', '["2026-01-02T00:00:00+00:00", "3 days", "\\\\x03"]',"""
        " (SELECT pgh_created_at FROM m.ev_event WHERE pgh_operation = 'INSERT' AND v = 'b'))"
    )
    assert rows(conn, "SELECT v FROM m.ev") == [("b",)]
    assert rows(conn, "SELECT pgh_label, v FROM m.ev_event WHERE pgh_id > 4 ORDER BY pgh_id") == [
        ("checked", "b2"),
        ("revert", "b"),
    ]
    assert rows(conn, "SELECT count(DISTINCT pgh_obj_id) FROM m.ev_event") == [(2,)]
    # A one-column key is stored as itself: a caller names it in its own settings, text or value.
    mallory.execute("""
        SET TimeZone = 'Asia/Tokyo'; SET DateStyle = 'SQL, DMY';
        CREATE TABLE m.tk (at timestamptz PRIMARY KEY, v text); CREATE TABLE m.dk (d date PRIMARY KEY, v text);
        SELECT track_table('m.tk'); SELECT track_table('m.dk');
        INSERT INTO m.tk VALUES ('2024-01-01 09:00', 'a'), ('2024-01-01 18:00', 'b');
        INSERT INTO m.dk VALUES ('02/01/2024', 'a');
    """)
    mallory.execute("SELECT record_history_event('m.tk', '2024-01-01 09:00', 'checked'),"
                    " record_history_event('m.tk', '2024-01-01 18:00'::timestamptz, 'checked'),"
                    " record_history_event('m.dk', '02/01/2024'::date, 'checked'), record_history_event('m.dk', '02/01/2024', 'checked')")
    mallory.execute("UPDATE m.tk SET v = v || '2'")
    mallory.execute("SELECT revert_row('m.tk', '2024-01-01 09:00', (SELECT min(pgh_created_at) FROM m.tk_event))")
    assert rows(conn, "SELECT v FROM m.tk ORDER BY at") == [("a",), ("b2",)]
    assert rows(conn, "SELECT pgh_label, v FROM m.tk_event ORDER BY pgh_id") == [
        ("insert", "a"), ("insert", "b"), ("checked", "a"), ("checked", "b"), ("update", "a2"), ("update", "b2"), ("revert", "a")]
    assert rows(conn, "SELECT pgh_label, v FROM m.dk_event ORDER BY pgh_id") == [("insert", "a"), ("checked", "a"), ("checked", "a")]


def test_a_deferred_primary_key_is_checked_at_the_end_of_each_statement(conn, roles):
    """Deferred, a primary key may be shared by two rows until the transaction
    commits (SET CONSTRAINTS needs no privilege): their histories would merge,
    and a replay lose one. The triggers of a table whose key, or a partition's
    (ATTACH PARTITION takes a deferrable one), is deferrable check it at the
    end of each statement, as DEFERRABLE INITIALLY IMMEDIATE does: one
    statement may still swap keys."""
    mallory, app = roles["mallory"], roles["app"]
    mallory.execute("""
        CREATE TABLE m.dk (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED, v text);
        CREATE TABLE m.ek (id int PRIMARY KEY, v text);
        CREATE TABLE m.pk (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
        CREATE TABLE m.pk1 PARTITION OF m.pk FOR VALUES FROM (0) TO (100) PARTITION BY RANGE (id);
        CREATE TABLE m.pk11 PARTITION OF m.pk1 FOR VALUES FROM (0) TO (50);
        CREATE TABLE m.pk12 (id int, v text, PRIMARY KEY (id) DEFERRABLE);
        SELECT track_table('m.dk'); SELECT track_table('m.ek'); SELECT track_table('m.pk');
        ALTER TABLE m.ek DROP CONSTRAINT ek_pkey, ADD PRIMARY KEY (id) DEFERRABLE;
        ALTER TABLE m.pk1 ATTACH PARTITION m.pk12 FOR VALUES FROM (50) TO (100);
        GRANT SELECT, INSERT, UPDATE, DELETE ON m.dk, m.ek, m.pk TO htx_app;
        INSERT INTO m.dk VALUES (1, 'a'), (2, 'b'), (3, 'c');
        INSERT INTO m.ek VALUES (1, 'a');
        INSERT INTO m.pk VALUES (60, 'a');
    """)
    for table, constraint, value in [("m.dk", "dk_pkey", 1), ("m.ek", "ek_pkey", 1), ("m.pk", "pk12_pkey", 60)]:
        app.execute("BEGIN")
        app.execute("SET CONSTRAINTS ALL DEFERRED")
        error = refused(app, f"INSERT INTO {table} VALUES ({value}, 'second')", "23505")
        app.execute("ROLLBACK")
        assert error.diag.message_primary == (f"two rows of tracked table {table} would share a key: duplicate key value violates"
                                              f' unique constraint "{constraint}"')
        assert error.diag.message_hint == "Change keys so that each statement leaves them unique (one statement may swap them)."
    # renamed, the key is still the one checked (a constraint of its old name could be another's)
    mallory.execute("ALTER TABLE m.dk RENAME CONSTRAINT dk_pkey TO dk_key;"
                    " CREATE TABLE m.decoy (id int, CONSTRAINT dk_pkey UNIQUE (id) DEFERRABLE)")
    app.execute("BEGIN")
    app.execute("SET CONSTRAINTS ALL DEFERRED")
    error = refused(app, "INSERT INTO m.dk VALUES (1, 'second')", "23505")
    app.execute("ROLLBACK")
    assert error.diag.message_primary == ("two rows of tracked table m.dk would share a key: duplicate key value violates"
                                          ' unique constraint "dk_key"')
    # two statements that swap keys through a shared one: the first fails
    app.execute("BEGIN")
    app.execute("SET CONSTRAINTS ALL DEFERRED")
    refused(app, "UPDATE m.dk SET id = 3 WHERE id = 2", "23505")
    app.execute("ROLLBACK")
    # one statement may
    app.execute("UPDATE m.dk SET id = 4 - id")
    assert rows(conn, "SELECT * FROM m.dk ORDER BY id") == [(1, "c"), (2, "b"), (3, "a")]
    for table in ("m.dk", "m.ek", "m.pk"):
        assert rows(conn, f"SELECT * FROM history_as_of(NULL::{table}, now()) ORDER BY id") == rows(
            conn, f"SELECT * FROM {table} ORDER BY id")


def test_a_condition_does_not_depend_on_the_writers_settings(conn, roles):
    """A condition may convert a timestamptz to a date, which follows
    TimeZone: a writer's SET would decide whether a labeled event is
    recorded. The trigger functions of a table with such a condition run with
    the settings pinned (TimeZone UTC); a condition that depends on no
    setting costs the others nothing."""
    mallory, app = roles["mallory"], roles["app"]
    mallory.execute("""
        CREATE TABLE m.pay (id int PRIMARY KEY, at timestamptz, v text);
        CREATE TABLE m.plain (id int PRIMARY KEY, v text);
        SELECT track_table('m.pay', label => 'new_year', operations => '{insert}',
                           condition => $$NEW.at::date = '2026-01-01'$$);
        SELECT track_table('m.plain', label => 'x', operations => '{insert}', condition => $$NEW.v = 'x'$$);
        GRANT INSERT ON m.pay, m.plain TO htx_app;
    """)
    app.execute("SET TimeZone = 'UTC'; INSERT INTO m.pay VALUES (1, '2026-01-01 00:30+00', 'a')")
    app.execute("SET TimeZone = 'America/New_York'; SET DateStyle = 'SQL, DMY';"
                " INSERT INTO m.pay VALUES (2, '2026-01-01 00:30+00', 'b'), (3, '2026-01-02 04:30+00', 'c')")
    app.execute("SET TimeZone = 'Pacific/Kiritimati'; INSERT INTO m.pay VALUES (4, '2025-12-31 23:30+00', 'd')")
    assert rows(conn, "SELECT id FROM m.pay_event WHERE pgh_label = 'new_year' ORDER BY id") == [(1,), (2,)]
    config = "SELECT p.proconfig FROM pg_proc AS p WHERE p.prosrc LIKE '%%Generated by history_track for %s (insert)%%'"
    assert "TimeZone=UTC" in rows(conn, config % "m.pay")[0][0]
    assert rows(conn, config % "m.plain") == [(["search_path=pg_catalog, pg_temp"],)]
    # immutable, yet reading a setting
    mallory.execute("""
        CREATE TABLE m.q (id int PRIMARY KEY, v text);
        SELECT track_table('m.q', label => 'odd', operations => '{insert}', condition => $$quote_ident(NEW.v) <> NEW.v$$);
        GRANT INSERT ON m.q TO htx_app;
    """)
    app.execute("SET quote_all_identifiers = on; INSERT INTO m.q VALUES (1, 'abc'), (2, 'A b')")
    assert rows(conn, "SELECT id FROM m.q_event WHERE pgh_label = 'odd'") == [(2,)]
    mallory.execute("""
        CREATE TABLE m.tr (id int PRIMARY KEY, at timestamptz);
        SELECT track_table('m.tr', label => 'x', operations => '{insert}',
                           condition => $$date_trunc('day', NEW.at, 'EST') = '2026-01-01 05:00+00'$$);
    """)
    assert "timezone_abbreviations=Default" in rows(conn, config % "m.tr")[0][0]


def test_what_writes_events_outside_the_triggers_pins_the_same_settings(conn):
    """Manual events, baselines and the DDL following write events of a
    table's rows, and the hash chain hashes them, with SET clauses of their
    own: they are the ones the trigger functions use (_output_settings)."""
    expected = [f"{name}={setting}" for name, setting in rows(conn, "SELECT * FROM history_track._output_settings()")]
    for function in ("_record_manual", "_record_rows", "_record_gone", "_resync", "_chain_link", "verify_history"):
        config = rows(conn, "SELECT proconfig FROM pg_proc WHERE proname = %s"
                            " ORDER BY pronamespace = 'history_track'::regnamespace DESC LIMIT 1", [function])[0][0]
        assert [c for c in config if not c.startswith(("search_path=", "constraint_exclusion="))] == expected, function


def test_manual_events_are_checked_whoever_calls(conn, roles):
    mallory, app = roles["mallory"], roles["app"]
    mallory.execute("CREATE TABLE m.rm (id int PRIMARY KEY); SELECT track_table('m.rm');"
                    " GRANT SELECT, UPDATE ON m.rm TO htx_app; INSERT INTO m.rm VALUES (1)")
    with app.transaction():
        app.execute("SELECT 1 FROM m.rm WHERE id = 1 FOR UPDATE")
        for label, context in [("delete", None), ("", None), ("ok", "[1]"), ("ok", '{"x": "' + "y" * 70000 + '"}')]:
            with pytest.raises(psycopg.Error) as info:
                with app.transaction():
                    app.execute("SELECT history_track._enter()")
                    app.execute("SELECT history_track._record_manual('m.rm', %s, %s, t, t.tableoid, t.ctid) FROM m.rm AS t WHERE id = 1",
                                [label, context])
            assert info.value.sqlstate in ("22023", "54000")
    assert rows(conn, "SELECT count(*) FROM m.rm_event WHERE pgh_operation = 'MANUAL'") == [(0,)]


def test_no_role_can_keep_others_from_tracking(conn, roles, history_track_dsn):
    mallory, app = roles["mallory"], roles["app"]
    refused(app, "LOCK TABLE history_track.tracked_table IN SHARE MODE; SELECT 1", "42501")
    refused(app, "SELECT FROM history_track.tracked_table FOR KEY SHARE", "42501")
    with app.transaction():
        # What any role may take on the catalog (it may read it): no conflict
        # with the lock tracking takes.
        app.execute("LOCK TABLE history_track.tracked_table IN ACCESS SHARE MODE")
        app.execute("SELECT pg_advisory_lock(hashtext('history_track catalog'))")
        mallory.execute("SET lock_timeout = '5s'; CREATE TABLE m.t (id int PRIMARY KEY); SELECT track_table('m.t')")
    assert rows(conn, "SELECT count(*) FROM history_track.tracked_table") == [(1,)]


def test_check_history_reports_dropped_indexes_and_interrupted_detaches(conn, roles, history_track_dsn):
    mallory = roles["mallory"]
    mallory.execute("""
        CREATE TABLE m.dd (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
        CREATE TABLE m.dd1 PARTITION OF m.dd FOR VALUES FROM (0) TO (10);
        CREATE TABLE m.dd2 PARTITION OF m.dd FOR VALUES FROM (10) TO (20);
        SELECT track_table('m.dd');
        INSERT INTO m.dd VALUES (1, 'a'), (11, 'b');
    """)
    index = rows(conn, "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'm.dd_event'::regclass"
                       " AND indkey[0] = (SELECT attnum FROM pg_attribute WHERE attrelid = 'm.dd_event'::regclass"
                       " AND attname = 'pgh_obj_id')")[0][0]
    conn.execute(f"DROP INDEX {index}")     # a superuser may
    with psycopg.connect(history_track_dsn + " user=htx_mallory") as reader:
        reader.execute("SELECT FROM m.dd")    # a transaction the detach waits for
        with pytest.raises(psycopg.errors.QueryCanceled):
            mallory.execute("SET statement_timeout = '1s'")
            mallory.execute("ALTER TABLE m.dd DETACH PARTITION m.dd2 CONCURRENTLY")
        mallory.execute("RESET statement_timeout")
    assert [p for _, p in rows(conn, "SELECT * FROM check_history()")] == [
        "its event table m.dd_event lacks the index on (pgh_obj_id, pgh_id) history_track made",
        "its partition m.dd2 is being detached (an interrupted DETACH PARTITION ... CONCURRENTLY): finish it with"
        " ALTER TABLE m.dd DETACH PARTITION m.dd2 FINALIZE"]
    mallory.execute("ALTER TABLE m.dd DETACH PARTITION m.dd2 FINALIZE")
    assert rows(conn, "SELECT * FROM history_as_of(NULL::m.dd, now())") == [(1, "a")]


# -- Names: what the generated code names is followed, whatever renames it -----

def test_a_schema_holding_what_history_triggers_name_keeps_its_name(conn, roles):
    """The generated functions name the event table, the table, its partitions
    and the types they cast to by schema and name. Following a schema's
    rename by writing them again is too late for a session in the middle of a
    write, which plans the body it compiled before again, by the old name: the
    owner could give that name to a schema of its own, with a look-alike event
    table whose trigger would run as history_track. So such a schema keeps its
    name, for every role and however the rename is issued; OWNER TO passes."""
    mallory, app = roles["mallory"], roles["app"]
    database = rows(conn, "SELECT current_database()")[0][0]
    conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO htx_mallory").format(sql.Identifier(database)))  # (to rename)
    conn.execute(
        "CREATE SCHEMA m2 AUTHORIZATION htx_mallory; CREATE SCHEMA m3 AUTHORIZATION htx_mallory;"
        " CREATE SCHEMA m4 AUTHORIZATION htx_mallory; GRANT USAGE ON SCHEMA m2, m3 TO htx_app;"
        # a type only a superuser can change, which the event table stores as itself
        " CREATE TYPE m3.level AS ENUM ('low', 'high'); GRANT USAGE ON TYPE m3.level TO PUBLIC"
    )
    try:
        mallory.execute("""
            CREATE TABLE m.t (id int PRIMARY KEY, v text);
            CREATE TABLE m.p (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
            CREATE TABLE m2.p1 PARTITION OF m.p FOR VALUES FROM (0) TO (100);
            CREATE TABLE m.l (id int PRIMARY KEY, level m3.level);
            CREATE TABLE m4.free (id int PRIMARY KEY);
            GRANT SELECT, INSERT, UPDATE, DELETE ON m.t, m.p, m.l TO htx_app;
            SELECT track_table('m.t'); SELECT track_table('m.p'); SELECT track_table('m.l');
        """)
        for schema, holds in [
            ("m", "event table l_event, event table p_event, event table t_event, table l, table p and 1 more"),
            ("m2", "table p1"),
            ("m3", "type level"),
        ]:
            for who, stmt, message in [
                    (mallory, f"ALTER SCHEMA {schema} RENAME TO {schema}_old", f"cannot rename schema {schema} to {schema}_old"),
                    (conn, f'ALTER SCHEMA "{schema}" RENAME TO "{schema}_old";', f"cannot rename schema {schema} to {schema}_old"),
                    (mallory, f"DO $$ BEGIN EXECUTE 'ALTER SCHEMA {schema} RENAME TO {schema}_old'; END $$",
                     f"cannot alter schema {schema}_old by this statement"),
                    (mallory, f"ALTER SCHEMA {schema} OWNER TO htx_mallory; ALTER SCHEMA {schema} RENAME TO x",
                     f"cannot alter schema {schema} by this statement"),
                    # (a rename that reads as OWNER TO, its tail in a comment)
                    (mallory, f"ALTER SCHEMA {schema}/**/RENAME/**/TO/**/x/* OWNER TO y*/", "cannot alter schema x by this statement")]:
                error = refused(who, stmt, "0A000")
                assert error.diag.message_primary == f"{message}: history_track's triggers name what it holds"
                assert error.diag.message_detail == (
                    f"It holds {holds}. A write running while a rename commits would still name them by the old name,"
                    " which another schema could then take."
                )
            # a lone OWNER TO passes; one the trigger cannot read as such is refused
            conn.execute(f"ALTER SCHEMA {schema} OWNER TO htx_auditor")
            conn.execute(f'ALTER SCHEMA "{schema}" OWNER TO "htx_mallory";')
            refused(mallory, f"DO $$ BEGIN EXECUTE 'ALTER SCHEMA {schema} OWNER TO htx_mallory'; END $$", "0A000")
        # a schema holding nothing history_track names is renamed as ever
        mallory.execute("ALTER SCHEMA m4 RENAME TO m5")
        app.execute(
            "INSERT INTO m.t VALUES (1, 'a'); INSERT INTO m.p VALUES (2, 'b'); INSERT INTO m.l VALUES (3, 'high')"
        )
        assert rows(
            conn,
            "SELECT pgh_operation, id, v FROM m.t_event UNION ALL SELECT pgh_operation, id, v FROM m.p_event"
            " UNION ALL SELECT pgh_operation, id, level::text FROM m.l_event ORDER BY 2",
        ) == [("INSERT", 1, "a"), ("INSERT", 2, "b"), ("INSERT", 3, "high")]
        # untracked, the schema is free again
        mallory.execute("SELECT untrack_table('m.l')")
        conn.execute("ALTER SCHEMA m3 RENAME TO m3_old")
        assert pwned(conn) == []
    finally:
        conn.execute("DROP SCHEMA IF EXISTS m5, m4 CASCADE")
        conn.execute(sql.SQL("REVOKE CREATE ON DATABASE {} FROM htx_mallory").format(sql.Identifier(database)))


def test_a_write_running_while_a_schema_rename_is_tried_is_recorded(conn, roles):
    """The attack the rule above closes: one session in the middle of an
    UPDATE (its trigger compiled before), the owner renaming the schema
    meanwhile, to make a look-alike event table of the old name next. The
    rename is refused, and the UPDATE is recorded in the real event table."""
    mallory, app = roles["mallory"], roles["app"]
    database = rows(conn, "SELECT current_database()")[0][0]
    conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO htx_mallory").format(sql.Identifier(database)))
    try:
        mallory.execute("""
            CREATE TABLE m.t (id int PRIMARY KEY, v text);
            GRANT SELECT, INSERT, UPDATE, DELETE ON m.t TO htx_app;
            SELECT track_table('m.t');
            INSERT INTO m.t VALUES (0, 'start');
        """)
        app.execute("UPDATE m.t SET v = 'warm' WHERE id = 0")
        errors: list[BaseException] = []

        def slow_update() -> None:
            try:
                app.execute("UPDATE m.t SET v = 'slow' FROM pg_sleep(2) WHERE id = 0")
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        writer = threading.Thread(target=slow_update)
        writer.start()
        time.sleep(0.5)
        refused(mallory, "ALTER SCHEMA m RENAME TO m_x", "0A000")
        writer.join()
        assert errors == []
        assert rows(conn, "SELECT pgh_operation, v FROM m.t_event ORDER BY pgh_id") == [
            ("INSERT", "start"),
            ("UPDATE", "warm"),
            ("UPDATE", "slow"),
        ]
        assert pwned(conn) == []
    finally:
        conn.execute(sql.SQL("REVOKE CREATE ON DATABASE {} FROM htx_mallory").format(sql.Identifier(database)))


@pytest.mark.parametrize("rename", ["ALTER TABLE {} RENAME COLUMN {} TO {}", "ALTER VIEW {} RENAME COLUMN {} TO {}",
                                    "ALTER MATERIALIZED VIEW {} RENAME COLUMN {} TO {}",
                                    "ALTER FOREIGN TABLE {} RENAME COLUMN {} TO {}",
                                    "ALTER TYPE {} RENAME ATTRIBUTE {} TO {}"])
def test_a_column_renamed_by_any_command_is_followed(conn, roles, rename):
    """PostgreSQL renames a table's columns by ALTER VIEW, ALTER MATERIALIZED
    VIEW, ALTER FOREIGN TABLE and ALTER TYPE as well as ALTER TABLE. Two
    columns swapped by name stay each with its history, and a value of the
    owner's enum never meets the owner's cast to text in the trigger."""
    mallory, app = roles["mallory"], roles["app"]
    mallory.execute("""
        CREATE TABLE m.t2 (id int PRIMARY KEY, a m.mood, b text);
        GRANT SELECT, INSERT, UPDATE, DELETE ON m.t2 TO htx_app;
        SELECT track_table('m.t2');
        INSERT INTO m.t2 VALUES (1, 'ok', 'x');
    """)
    for old, new in [("a", "tmp"), ("b", "a"), ("tmp", "b")]:
        mallory.execute(rename.format("m.t2", old, new))
    app.execute("INSERT INTO m.t2 (id, a, b) VALUES (2, 'y', 'happy')")
    app.execute("UPDATE m.t2 SET a = 'z' WHERE id = 1")
    assert pwned(conn) == []
    assert rows(conn, "SELECT pgh_operation, id, a, b FROM m.t2_event ORDER BY pgh_id") == [
        ("INSERT", 1, "x", "ok"), ("INSERT", 2, "y", "happy"), ("UPDATE", 1, "z", "ok")]
    assert rows(conn, "SELECT * FROM history_as_of(NULL::m.t2, now()) ORDER BY id") == rows(
        conn, "SELECT * FROM m.t2 ORDER BY id")
    assert rows(conn, "SELECT * FROM check_history()") == []


def test_a_partition_being_detached_gets_no_code_of_the_owners(conn, roles, history_track_dsn):
    """A partition whose DETACH ... CONCURRENTLY was interrupted is no longer in
    the tree, but history_track still reads it (its rows leave the history
    when the detach ends): statistics or index expressions calling the
    owner's function are refused on it as on any partition."""
    mallory = roles["mallory"]
    mallory.execute("""
        CREATE TABLE m.dd (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
        CREATE TABLE m.dd1 PARTITION OF m.dd FOR VALUES FROM (0) TO (10);
        CREATE TABLE m.dd2 PARTITION OF m.dd FOR VALUES FROM (10) TO (20);
        SELECT track_table('m.dd');
        INSERT INTO m.dd VALUES (1, 'a'), (11, 'b');
    """)
    with psycopg.connect(history_track_dsn + " user=htx_mallory") as reader:
        reader.execute("SELECT FROM m.dd")    # a transaction the detach waits for
        with pytest.raises(psycopg.errors.QueryCanceled):
            mallory.execute("SET statement_timeout = '1s'")
            mallory.execute("ALTER TABLE m.dd DETACH PARTITION m.dd2 CONCURRENTLY")
        mallory.execute("RESET statement_timeout")
    for ddl in ["CREATE STATISTICS m.s ON (m.ipwn(1) + id), v FROM m.dd2", "CREATE INDEX ON m.dd2 ((id + m.ipwn(0)))",
                "CREATE INDEX ON m.dd2 (id) WHERE id > m.ipwn(0)"]:
        error = refused(mallory, ddl, "42501")
        assert "uses the function m.ipwn(integer)" in error.diag.message_primary
    # Nor are its history triggers dropped, to change its rows unrecorded before the detach ends.
    for op in ("insert", "update", "delete", "truncate"):
        refused(mallory, f"DROP TRIGGER history_track_{op} ON m.dd2", "55000")
    mallory.execute("UPDATE m.dd2 SET v = 'c'")
    mallory.execute("ALTER TABLE m.dd DETACH PARTITION m.dd2 FINALIZE")
    assert pwned(conn) == []
    assert rows(conn, "SELECT pgh_label, pgh_operation, id, v FROM m.dd_event ORDER BY pgh_id") == [
        ("insert", "INSERT", 1, "a"), ("insert", "INSERT", 11, "b"), ("update", "UPDATE", 11, "c"),
        ("baseline", "DELETE", 11, "c")]
    assert rows(conn, "SELECT * FROM history_as_of(NULL::m.dd, now())") == [(1, "a")]


def test_history_tracks_own_objects_hold_no_one_elses_history(conn, roles):
    """A table may have a column of history_track's generated row type (types
    are usable by anyone), but its history stores the value's text form, and
    untracking the type's table drops nothing of anyone's: it is refused while
    the column uses the type."""
    mallory = roles["mallory"]
    mallory.execute("CREATE TABLE m.t (id int PRIMARY KEY, v text); SELECT track_table('m.t')")
    row_type = "history_track._t{}_row".format(
        rows(conn, "SELECT table_id FROM history_track.tracked_table WHERE table_name = 'm.t'::regclass")[0][0])
    mallory.execute(f"""
        CREATE TABLE m.t3 (id int PRIMARY KEY, r {row_type}, w text);
        SELECT track_table('m.t3');
        INSERT INTO m.t3 VALUES (1, ROW(1, 'evidence'), 'w1');
    """)
    assert rows(conn, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                      " WHERE attrelid = 'm.t3_event'::regclass AND attname = 'r'") == [("text",)]
    error = refused(mallory, "SELECT untrack_table('m.t')", "2BP01")
    assert "m.t3" in error.diag.message_detail
    assert rows(conn, "SELECT count(*) FROM history_trackers WHERE table_name = 'm.t'::regclass") == [(3,)]
    mallory.execute("ALTER TABLE m.t3 DROP COLUMN r")
    mallory.execute("SELECT untrack_table('m.t')")
    assert rows(conn, "SELECT pgh_operation, id, r, w FROM m.t3_event") == [("INSERT", 1, "(1,evidence)", "w1")]
    assert rows(conn, "SELECT * FROM history_track.prune_log") == []


def test_ddl_under_a_snapshot_older_than_the_tracking_is_refused(conn, roles, history_track_dsn):
    """history_track decides what to follow from its own catalog, read with the
    transaction's snapshot. Under REPEATABLE READ a snapshot taken before
    track_table would show the table untracked while the DDL acts on it: the
    DDL is refused (25000), except temporary objects and new tables."""
    mallory, app = roles["mallory"], roles["app"]
    mallory.execute("""
        CREATE TABLE m.t2 (id int PRIMARY KEY, a m.mood, b text);
        GRANT SELECT, INSERT, UPDATE, DELETE ON m.t2 TO htx_app;
    """)
    with psycopg.connect(history_track_dsn + " user=htx_mallory") as old:
        old.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        old.execute("SELECT count(*) FROM history_track.tracked_table")     # the snapshot
        mallory.execute("SELECT track_table('m.t2'); INSERT INTO m.t2 VALUES (1, 'ok', 'x')")
        for stmt in ["ALTER TABLE m.t2 RENAME COLUMN a TO tmp", "CREATE STATISTICS m.s ON (m.ipwn(1) + id), b FROM m.t2",
                     "CREATE INDEX ON m.t2 ((id + m.ipwn(0)))", "DROP TRIGGER history_track_insert ON m.t2",
                     "ALTER TABLE m.t2 DISABLE TRIGGER history_track_update", "DROP TABLE m.t2",
                     "DROP INDEX m.t2_event_pgh_obj_id_pgh_id_idx", "CREATE TEMPORARY TABLE c () INHERITS (m.t2)"]:
            old.execute("SAVEPOINT s")
            error = refused(old, stmt, "25000")
            assert error.diag.message_primary.startswith("history_track follows DDL only in READ COMMITTED transactions")
            old.execute("ROLLBACK TO SAVEPOINT s")
        for stmt in ["SELECT untrack_table('m.t2')", "SELECT track_table('m.t2', label => 'x', operations => '{insert}')"]:
            old.execute("SAVEPOINT s")
            error = refused(old, stmt, "25000")
            assert error.diag.message_primary.endswith("needs a READ COMMITTED transaction")
            old.execute("ROLLBACK TO SAVEPOINT s")
        old.execute("CREATE TEMPORARY TABLE scratch (id int PRIMARY KEY); CREATE TABLE m.fresh (id serial PRIMARY KEY, v text)")
        old.commit()
    app.execute("INSERT INTO m.t2 (id, a, b) VALUES (2, 'happy', 'y')")
    assert pwned(conn) == []
    assert rows(conn, "SELECT pgh_operation, id, a, b FROM m.t2_event ORDER BY pgh_id") == [
        ("INSERT", 1, "ok", "x"), ("INSERT", 2, "happy", "y")]


def test_an_index_made_valid_behind_the_check_is_caught_when_the_table_is_read(conn, roles, history_track_dsn):
    """CREATE INDEX CONCURRENTLY commits the index before the event trigger
    refuses it; REINDEX, which no event trigger follows, makes it valid. The
    check runs again where history_track reads the table with its own
    privileges (TRUNCATE's trigger), so the owner's function is not planned."""
    mallory = roles["mallory"]
    mallory.execute("""
        CREATE TABLE m.t (id int PRIMARY KEY, v text);
        GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON m.t TO htx_app;
        SELECT track_table('m.t');
        INSERT INTO m.t VALUES (1, 'a');
    """)
    refused(mallory, "CREATE INDEX CONCURRENTLY t_f ON m.t ((id + m.ipwn(0)))", "42501")
    mallory.execute("REINDEX INDEX m.t_f")
    with psycopg.connect(history_track_dsn + " user=htx_app", autocommit=True) as app:   # a backend that plans afresh
        error = refused(app, "TRUNCATE m.t", "42501")
        assert "index m.t_f uses the function m.ipwn(integer)" in error.diag.message_primary
    assert pwned(conn) == []
    mallory.execute("DROP INDEX m.t_f")
    with psycopg.connect(history_track_dsn + " user=htx_app", autocommit=True) as app:
        app.execute("TRUNCATE m.t")
    assert rows(conn, "SELECT pgh_operation, id FROM m.t_event ORDER BY pgh_id") == [("INSERT", 1), ("TRUNCATE", 1)]


def test_reverts_call_no_function_another_role_defines_in_the_extensions_schema(conn, roles):
    """revert_table and revert_row replay with history_as_of, which is
    polymorphic: a role that may create in the extension's schema (public,
    on PostgreSQL 14 everyone) could define one for a table's row type, a
    better match, run by whoever reverts. They call history_track's own."""
    mallory, auditor = roles["mallory"], roles["auditor"]
    schema = rows(conn, "SELECT n.nspname FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace"
                        " WHERE p.oid = 'check_history'::regproc")[0][0]
    conn.execute(sql.SQL("GRANT CREATE ON SCHEMA {} TO htx_auditor").format(sql.Identifier(schema)))
    try:
        mallory.execute("""
            CREATE TABLE m.acct (id int PRIMARY KEY, bal int);
            SELECT track_table('m.acct');
            INSERT INTO m.acct VALUES (1, 10);
        """)
        ts = rows(conn, "SELECT pgh_created_at FROM m.acct_event")[0][0]
        mallory.execute("UPDATE m.acct SET bal = 20")
        for name in ("history_as_of", "history_events"):
            auditor.execute(sql.SQL(
                "CREATE FUNCTION {}.{}(tbl m.acct, ts timestamptz, key text DEFAULT NULL) RETURNS SETOF m.acct"
                " LANGUAGE plpgsql AS $$ BEGIN PERFORM m.pwn(1); RETURN QUERY SELECT 1, 1000000; END $$"
            ).format(sql.Identifier(schema), sql.Identifier(name)))
        assert rows(conn, "SELECT revert_row('m.acct', '1', %s)", [ts]) == [(1,)]
        mallory.execute("UPDATE m.acct SET bal = 30")
        assert rows(conn, "SELECT revert_table('m.acct', %s)", [ts]) == [(1,)]
        assert rows(conn, "SELECT count(*) FROM history_context_events(gen_random_uuid())") == [(0,)]
        assert pwned(conn) == []
        assert rows(conn, "SELECT * FROM m.acct") == [(1, 10)]
    finally:
        conn.execute(sql.SQL("DROP FUNCTION IF EXISTS {0}.history_as_of(m.acct, timestamptz, text),"
                             " {0}.history_events(m.acct, timestamptz, text);"
                             " REVOKE CREATE ON SCHEMA {0} FROM htx_auditor").format(sql.Identifier(schema)))


def test_a_foreign_table_cannot_inherit_from_a_tracked_table(conn, roles):
    """CREATE FOREIGN TABLE ... INHERITS would make a tracked table an
    inheritance parent (writes through it reach the child without its
    statement triggers): refused like CREATE TABLE ... INHERITS."""
    mallory = roles["mallory"]
    conn.execute("CREATE FOREIGN DATA WRAPPER htx_fdw; CREATE SERVER htx_server FOREIGN DATA WRAPPER htx_fdw;"
                 " GRANT USAGE ON FOREIGN SERVER htx_server TO htx_mallory")
    try:
        mallory.execute("CREATE TABLE m.t (id int PRIMARY KEY, v text); SELECT track_table('m.t')")
        error = refused(mallory, "CREATE FOREIGN TABLE m.ft () INHERITS (m.t) SERVER htx_server", "0A000")
        assert "inheritance" in error.diag.message_primary
        mallory.execute("CREATE FOREIGN TABLE m.ft (id int NOT NULL, v text) SERVER htx_server")
        refused(mallory, "ALTER FOREIGN TABLE m.ft INHERIT m.t", "0A000")
        assert rows(conn, "SELECT * FROM check_history()") == []
    finally:
        conn.execute("DROP SERVER htx_server CASCADE; DROP FOREIGN DATA WRAPPER htx_fdw")


def test_the_python_client_calls_no_function_another_role_defines(conn, roles):
    """The Python client (and the CLI and Django helpers built on it) passes
    parameters that psycopg sends untyped; a function of the same name taking
    text, defined in the extension's schema by a role that may create there,
    would be preferred, and run as whoever reads. Every call is typed, and
    history_as_of goes through history_track's own function."""
    from history_track import api

    mallory = roles["mallory"]
    schema = rows(conn, "SELECT n.nspname FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace"
                        " WHERE p.oid = 'check_history'::regproc")[0][0]
    conn.execute(sql.SQL("GRANT CREATE ON SCHEMA {} TO htx_mallory").format(sql.Identifier(schema)))
    try:
        mallory.execute("CREATE TABLE m.t (id int PRIMARY KEY, v text); SELECT track_table('m.t');"
                        " INSERT INTO m.t VALUES (1, 'a')")
        ts = rows(conn, "SELECT now()")[0][0]
        overloads = {
            "history_events(tbl regclass, key text, context_id uuid, since text, until text, last int)":
                "RETURNS TABLE (table_name regclass, pgh_id bigint, pgh_created_at timestamptz, pgh_label text,"
                " pgh_operation text, pgh_obj_id jsonb, pgh_context_id uuid, pgh_context jsonb, data jsonb, diff jsonb)"
                " LANGUAGE plpgsql AS $$ BEGIN PERFORM m.pwn(1); END $$",
            "history_context_events(context_id text)":
                "RETURNS TABLE (table_name regclass, event_table regclass, pgh_id bigint, pgh_created_at timestamptz,"
                " pgh_label text, pgh_operation text, pgh_obj_id jsonb, pgh_context jsonb, data jsonb)"
                " LANGUAGE plpgsql AS $$ BEGIN PERFORM m.pwn(1); END $$",
            "history_as_of(tbl m.t, ts timestamptz, key text)":
                "RETURNS SETOF m.t LANGUAGE plpgsql AS $$ BEGIN PERFORM m.pwn(1); END $$",
            "revert_table(tbl regclass, ts text)": "RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN PERFORM m.pwn(1); RETURN 0; END $$",
        }
        for signature, body in overloads.items():
            mallory.execute(f"CREATE FUNCTION {sql.Identifier(schema).as_string(mallory)}.{signature} {body}")
        assert [e.operation for e in api.history(conn, "m.t")] == ["INSERT"]
        assert api.as_of(conn, "m.t", ts) == [{"id": 1, "v": "a"}]
        assert api.context_events(conn, "00000000-0000-0000-0000-000000000000") == []
        assert api.revert_table(conn, "m.t", ts) == 0
        assert pwned(conn) == []
    finally:
        for signature in overloads:
            conn.execute(f"DROP FUNCTION IF EXISTS {sql.Identifier(schema).as_string(conn)}."
                         + signature.split("(")[0] + "(" + ", ".join(
                             a.split()[-1] for a in signature[signature.index("(") + 1:-1].split(", ")) + ")")
        conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM htx_mallory").format(sql.Identifier(schema)))


def test_the_python_client_names_the_schema_it_calls(conn, roles):
    """Typed calls are exact matches, but an exact copy in a schema earlier on
    the reader's search path (a schema named after the superuser's role, which
    "$user" puts first, made by a role that may create schemas) would still be
    chosen: the client names the schema history_track is installed in."""
    from history_track import api

    mallory = roles["mallory"]
    me, database = rows(conn, "SELECT current_user, current_database()")[0]
    conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO htx_mallory").format(sql.Identifier(database)))
    conn.execute('SET search_path = "$user", public')
    try:
        mallory.execute(sql.SQL("CREATE SCHEMA {me}; GRANT USAGE ON SCHEMA {me} TO PUBLIC").format(me=sql.Identifier(me)))
        mallory.execute("CREATE TABLE m.t (id int PRIMARY KEY, v text); SELECT track_table('m.t');"
                        " INSERT INTO m.t VALUES (1, 'a')")
        mallory.execute(sql.SQL(
            "CREATE FUNCTION {me}.history_events(tbl regclass, key text, context_id uuid, since timestamptz,"
            " until timestamptz, last integer) RETURNS TABLE (table_name regclass, pgh_id bigint,"
            " pgh_created_at timestamptz, pgh_label text, pgh_operation text, pgh_obj_id jsonb, pgh_context_id uuid,"
            " pgh_context jsonb, data jsonb, diff jsonb) LANGUAGE plpgsql AS $$ BEGIN PERFORM m.pwn(1); END $$;"
            " CREATE FUNCTION {me}.untrack_table(tbl regclass, label text, drop_events boolean) RETURNS void"
            " LANGUAGE plpgsql AS $$ BEGIN PERFORM m.pwn(2); END $$"
        ).format(me=sql.Identifier(me)))
        assert [e.operation for e in api.history(conn, "m.t")] == ["INSERT"]
        api.untrack_table(conn, "m.t")
        assert api.trackers(conn, "m.t") == []
        assert pwned(conn) == []
    finally:
        conn.execute("RESET search_path")
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE; REVOKE CREATE ON DATABASE {} FROM htx_mallory").format(
            sql.Identifier(me), sql.Identifier(database)))
