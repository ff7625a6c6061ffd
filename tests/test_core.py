"""The core: event tables, default trackers, exact event rows, any table."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import GENERATED, catalog_snapshot, rows


def events(conn: psycopg.Connection[Any], event_table: str, columns: str) -> list[tuple[Any, ...]]:
    return rows(conn, f"SELECT pgh_label, pgh_operation, pgh_obj_id, {columns} FROM {event_table} ORDER BY pgh_id")


def test_track_table_creates_event_table_with_pgh_columns_then_mirrored(conn):
    conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, status text, amount numeric(8,2))")
    assert conn.execute("SELECT track_table('orders')::text").fetchone() == ("orders_event",)
    assert rows(conn, """
        SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute
         WHERE attrelid = 'orders_event'::regclass AND attnum > 0 ORDER BY attnum""") == [
        ("pgh_id", "bigint", True),
        ("pgh_created_at", "timestamp with time zone", True),
        ("pgh_label", "text", True),
        ("pgh_operation", "text", True),
        ("pgh_obj_id", "bigint", True),
        ("pgh_context_id", "uuid", False),
        ("pgh_context", "jsonb", False),
        ("pgh_old_obj_id", "bigint", False),
        ("pgh_statement_id", "bigint", False),
        ("id", "bigint", False),
        ("status", "text", False),
        ("amount", "numeric(8,2)", False),
    ]
    assert rows(conn, "SELECT table_name::text, event_table::text, label, operations, condition, snapshot"
                      " FROM history_trackers") == [
        ("orders", "orders_event", "insert", ["insert"], None, "new"),
        ("orders", "orders_event", "update", ["update"], None, "new"),
        ("orders", "orders_event", "delete", ["delete"], None, "old"),
    ]


def test_default_trackers_record_exact_rows(conn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric)")
    conn.execute("SELECT track_table('orders')")
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10), (2, 'new', NULL)")
    conn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
    conn.execute("UPDATE orders SET status = status, amount = amount")  # no change: nothing
    conn.execute("UPDATE orders SET amount = 10.0 WHERE id = 1")  # 10 -> 10.0: a stored change
    conn.execute("UPDATE orders SET amount = NULL WHERE id = 2")  # NULL -> NULL: nothing
    conn.execute("DELETE FROM orders")
    assert events(conn, "orders_event", "id, status, amount") == [
        ("insert", "INSERT", 1, 1, "new", Decimal("10")),
        ("insert", "INSERT", 2, 2, "new", None),
        ("update", "UPDATE", 1, 1, "paid", Decimal("10")),
        ("update", "UPDATE", 1, 1, "paid", Decimal("10.0")),
        ("delete", "DELETE", 1, 1, "paid", Decimal("10.0")),
        ("delete", "DELETE", 2, 2, "new", None),
    ]
    ids = [r[0] for r in rows(conn, "SELECT pgh_id FROM orders_event ORDER BY pgh_created_at, pgh_id")]
    assert ids == sorted(ids) and len(set(ids)) == 6


def test_rolled_back_work_leaves_no_events(conn):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    conn.execute("SELECT track_table('t')")
    with pytest.raises(psycopg.errors.DivisionByZero):
        with conn.transaction():
            conn.execute("INSERT INTO t VALUES (1, 'a')")
            conn.execute("SELECT 1 / 0")
    with conn.transaction():
        conn.execute("INSERT INTO t VALUES (2, 'kept')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            with conn.transaction():  # a savepoint
                conn.execute("UPDATE t SET v = 'lost'")
                conn.execute("INSERT INTO t VALUES (2, 'dup')")
    assert events(conn, "t_event", "id, v") == [("insert", "INSERT", 2, 2, "kept")]


def test_track_table_twice_is_harmless(conn):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    conn.execute("SELECT track_table('t')")
    before = catalog_snapshot(conn)
    assert conn.execute("SELECT track_table('t')::text").fetchone() == ("t_event",)
    assert catalog_snapshot(conn) == before
    conn.execute("INSERT INTO t VALUES (1)")
    assert events(conn, "t_event", "id") == [("insert", "INSERT", 1, 1)]


def test_untrack_keeps_events_and_drop_events_removes_them(conn):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    conn.execute("SELECT track_table('t')")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.execute("SELECT untrack_table('t')")
    conn.execute("INSERT INTO t VALUES (2)")
    assert events(conn, "t_event", "id") == [("insert", "INSERT", 1, 1)]
    assert rows(conn, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 't'::regclass") == [(0,)]
    conn.execute("SELECT track_table('t')")
    conn.execute("DELETE FROM t WHERE id = 2")
    assert events(conn, "t_event", "id") == [("insert", "INSERT", 1, 1), ("delete", "DELETE", 2, 2)]
    conn.execute("SELECT untrack_table('t', drop_events => true)")
    assert rows(conn, "SELECT to_regclass('t_event')") == [(None,)]
    assert rows(conn, "SELECT count(*) FROM pg_proc WHERE pronamespace = 'history_track'::regnamespace"
                      " AND proname ~ %s", [GENERATED]) == [(0,)]
    assert rows(conn, "SELECT count(*) FROM history_track.tracked_table") == [(0,)]


def test_swapping_primary_keys_in_one_statement_pairs_rows_correctly(conn):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED, name text)")
    conn.execute("SELECT track_table('t')")
    conn.execute("INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three')")
    conn.execute("UPDATE t SET id = 4 - id, name = name || '!'")
    got = rows(conn, "SELECT pgh_obj_id, id, name FROM t_event WHERE pgh_operation = 'UPDATE' ORDER BY pgh_id")
    assert sorted(got) == [(1, 1, "three!"), (2, 2, "two!"), (3, 3, "one!")]


@pytest.mark.parametrize("work_mem", ["64kB", "64MB"])
def test_key_changing_bulk_update_pairs_every_row(conn, work_mem):
    """Old and new transition rows are paired by position; prove it on 20k rows,
    with transition tables in memory and spilled to disk."""
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, original int NOT NULL, pad text)")
    conn.execute("SELECT track_table('t')")
    conn.execute("INSERT INTO t SELECT g, g, repeat('x', 50) FROM generate_series(1, 20000) g")
    conn.execute(f"SET work_mem = '{work_mem}'")
    conn.execute("UPDATE t SET id = id + 100000, pad = md5(id::text)")
    bad = rows(conn, """
        SELECT count(*) FILTER (WHERE pgh_obj_id <> original + 100000 OR id <> pgh_obj_id
                                   OR pad <> md5(original::text)),
               count(*)
          FROM t_event WHERE pgh_operation = 'UPDATE'""")
    assert bad == [(0, 20000)]


def test_upsert_records_insert_and_update(conn):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, n int)")
    conn.execute("SELECT track_table('t')")
    conn.execute("INSERT INTO t VALUES (1, 1)")
    conn.execute("INSERT INTO t VALUES (1, 10), (2, 20) ON CONFLICT (id) DO UPDATE SET n = excluded.n")
    conn.execute("INSERT INTO t VALUES (1, 10) ON CONFLICT (id) DO UPDATE SET n = excluded.n")  # no change
    conn.execute("INSERT INTO t VALUES (1, 99) ON CONFLICT DO NOTHING")
    got = sorted(rows(conn, "SELECT pgh_operation, pgh_obj_id, n FROM t_event"))
    assert got == [("INSERT", 1, 1), ("INSERT", 2, 20), ("UPDATE", 1, 10)]


def test_composite_key_is_a_json_array_in_key_order(conn):
    conn.execute("CREATE TYPE colour AS ENUM ('red', 'blue')")
    conn.execute("CREATE TABLE lines (b text, a int, c colour, qty int, PRIMARY KEY (a, b, c))")
    conn.execute("SELECT track_table('lines')")
    conn.execute("INSERT INTO lines VALUES ('x', 1, 'red', 5)")
    conn.execute("UPDATE lines SET c = 'blue'")
    assert rows(conn, "SELECT pgh_obj_id, pg_typeof(pgh_obj_id)::text FROM lines_event ORDER BY pgh_id") == [
        ([1, "x", "red"], "jsonb"),
        ([1, "x", "blue"], "jsonb"),
    ]


def test_column_values_round_trip_exactly(conn):
    conn.execute("""
        CREATE TYPE mood AS ENUM ('sad', 'happy');
        CREATE DOMAIN short_text AS varchar(5) CHECK (VALUE <> '');
        CREATE TABLE t (
            id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            n numeric(20,10), f float8, ts timestamptz, d date, iv interval, b bytea,
            arr int[][], tags text[], j jsonb, js json, m mood, s short_text, u uuid, inet_ inet,
            r int4range, twice int GENERATED ALWAYS AS (length(s) * 2) STORED)""")
    conn.execute("SELECT track_table('t')")
    conn.execute("""
        INSERT INTO t (n, f, ts, d, iv, b, arr, tags, j, js, m, s, u, inet_, r) VALUES
        (1.0000000001, 'NaN', '2026-03-04 05:06:07.123456+02', '2026-01-01', '1 day 2 hours', '\\x00ff',
         '{{1,2},{3,4}}', '{"a b",NULL,"\\""}', '{"z": 1, "a": [true, null]}', '{"b":1,  "a":2}', 'happy',
         'hé', gen_random_uuid(), '10.0.0.1/8', '[1,5)'),
        (NULL, '-0', NULL, NULL, NULL, NULL, NULL, '{}', 'null', '[]', NULL, NULL, NULL, NULL, 'empty')""")
    conn.execute("UPDATE t SET f = 0 WHERE f = '-0'")  # -0 -> 0 is a different stored value
    # Every event's mirrored columns equal the row it recorded (by text form).
    mismatched = rows(conn, """
        SELECT e.pgh_id FROM t_event e
          JOIN t ON t.id = e.id
         WHERE e.pgh_operation = 'INSERT' AND e.id = 1
           AND (e.n, e.f::text, e.ts, e.d, e.iv, e.b, e.arr, e.tags, e.j, e.js::text, e.m, e.s, e.u, e.inet_, e.r, e.twice)
               IS DISTINCT FROM
               (t.n, t.f::text, t.ts, t.d, t.iv, t.b, t.arr, t.tags, t.j, t.js::text, t.m, t.s, t.u, t.inet_, t.r, t.twice)""")
    assert mismatched == []
    assert rows(conn, "SELECT pgh_operation, id, f::text, js::text, twice FROM t_event ORDER BY pgh_id") == [
        ("INSERT", 1, "NaN", '{"b":1,  "a":2}', 4),
        ("INSERT", 2, "-0", "[]", None),
        ("UPDATE", 2, "0", "[]", None),
    ]


HOSTILE_SCHEMA = 'Ünïcode "schema"; --'
HOSTILE_TABLE = 'Robert\'); DROP TABLE students;--'


def test_hostile_identifiers_and_reserved_column_names(conn):
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(HOSTILE_SCHEMA)))
    table = sql.Identifier(HOSTILE_SCHEMA, HOSTILE_TABLE)
    conn.execute(sql.SQL(
        'CREATE TABLE {} ("select" int PRIMARY KEY, "old" text, "new" text, "User" text, "a""b" text,'
        ' "order" int, "row" text, "%s" text)').format(table))
    regclass = conn.execute(sql.SQL("SELECT {}::regclass::text").format(sql.Literal(table.as_string(conn)))).fetchone()[0]
    event = conn.execute("SELECT track_table(%s::regclass)::text", [regclass]).fetchone()[0]
    conn.execute("SELECT track_table(%s::regclass, label => 'renewed', operations => '{update}',"
                 " condition => 'OLD.\"new\" IS DISTINCT FROM NEW.\"new\" AND NEW.\"a\"\"b\" = ''%%s''')",
                 [regclass])
    conn.execute(sql.SQL('INSERT INTO {} VALUES (1, \'o\', \'n\', \'u\', \'q\', 2, \'r\', \'p\')').format(table))
    conn.execute(sql.SQL('UPDATE {} SET "new" = \'N\', "a""b" = \'%s\'').format(table))
    conn.execute(sql.SQL('DELETE FROM {}').format(table))
    assert event == sql.Identifier(HOSTILE_SCHEMA, HOSTILE_TABLE + "_event").as_string(conn)
    assert rows(conn, f'SELECT pgh_label, pgh_obj_id, "select", "old", "new", "a""b", "%s" FROM {event} ORDER BY pgh_id') == [
        ("insert", 1, 1, "o", "n", "q", "p"),
        ("renewed", 1, 1, "o", "N", "%s", "p"),  # labeled trackers first, then the default one
        ("update", 1, 1, "o", "N", "%s", "p"),
        ("delete", 1, 1, "o", "N", "%s", "p"),
    ]


def test_event_table_names_near_the_63_byte_limit(conn):
    fits = "t" * 57  # 57 + len('_event') = 63: kept as is
    long_a = "a" * 60 + "one"
    long_b = "a" * 60 + "two"
    for name in (fits, long_a, long_b):
        conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY)").format(sql.Identifier(name)))
    got = [conn.execute("SELECT track_table(%s::regclass)::text", [n]).fetchone()[0] for n in (fits, long_a, long_b)]
    md5 = [conn.execute("SELECT left(md5(%s), 8)", [n]).fetchone()[0] for n in (long_a, long_b)]
    assert got == [fits + "_event", "a" * 48 + "_" + md5[0] + "_event", "a" * 48 + "_" + md5[1] + "_event"]
    assert all(len(g.encode()) <= 63 for g in got) and len(set(got)) == 3
    for name in (fits, long_a, long_b):
        conn.execute(sql.SQL("INSERT INTO {} VALUES (1)").format(sql.Identifier(name)))
    assert [rows(conn, f"SELECT count(*) FROM {g}")[0][0] for g in got] == [1, 1, 1]


def test_event_table_lives_in_the_tables_schema_and_belongs_to_the_extension_owner(conn):
    conn.execute("CREATE SCHEMA sales; CREATE TABLE sales.orders (id int PRIMARY KEY)")
    assert conn.execute("SELECT track_table('sales.orders')::text").fetchone() == ("sales.orders_event",)
    # The owner of history_track's schema: the extension's owner, or the role
    # that installed it without the extension.
    assert rows(conn, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'sales.orders_event'::regclass") \
        == rows(conn, "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'history_track'")


def test_bulk_update_after_a_small_one_in_the_same_session_stays_linear(conn):
    """PL/pgSQL plans the trigger's statements once per session; the pairing of
    old and new rows must not be planned as a nested loop for the first one-row
    update and then reused for a large one (which took minutes: quadratic)."""
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, a int)")
    conn.execute("SELECT track_table('t')")
    conn.execute("INSERT INTO t VALUES (0, 0)")
    conn.execute("UPDATE t SET a = a + 1")  # plans for one row
    conn.execute("INSERT INTO t SELECT g, 0 FROM generate_series(1, 30000) g")
    conn.execute("SET statement_timeout = '20s'")  # linear: well under a second; quadratic: minutes
    conn.execute("UPDATE t SET a = a + 1")
    conn.execute("RESET statement_timeout")
    assert rows(conn, "SELECT count(*) FROM t_event WHERE pgh_operation = 'UPDATE'") == [(30002,)]


def test_an_update_pairs_rows_by_their_count_and_leaves_the_settings_as_they_were(conn):
    """One row is paired without a join; many by a hash join planned under settings
    the trigger sets for that statement alone: the writer's own settings, and the
    transaction's, are as they were afterwards (and a larger work_mem is kept)."""
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, a int)")
    conn.execute("SELECT track_table('t')")
    conn.execute("INSERT INTO t SELECT g, 0 FROM generate_series(1, 3) g")
    settings = "SELECT current_setting('enable_nestloop'), current_setting('jit'), current_setting('work_mem')"
    with conn.transaction():
        conn.execute("SET LOCAL work_mem = '5MB'; SET LOCAL enable_nestloop = on")
        conn.execute("UPDATE t SET id = id + 10, a = 1 WHERE id = 1")  # one row, key changed
        conn.execute("UPDATE t SET id = id + 20, a = 2 WHERE id IN (2, 3)")  # two rows, keys changed
        assert rows(conn, settings) == [("on", "on", "5MB")]
        conn.execute("SET LOCAL work_mem = '1GB'")
        conn.execute("UPDATE t SET a = 3")
        assert rows(conn, settings) == [("on", "on", "1GB")]
    assert rows(conn, """
        SELECT pgh_obj_id, pgh_old_obj_id, a, pgh_statement_id IS NOT NULL
          FROM t_event WHERE pgh_operation = 'UPDATE' ORDER BY a, pgh_obj_id""") == [
        (11, 1, 1, True), (22, 2, 2, True), (23, 3, 2, True),
        (11, None, 3, False), (22, None, 3, False), (23, None, 3, False)]
    assert rows(conn, """
        SELECT count(DISTINCT pgh_statement_id) FROM t_event WHERE pgh_statement_id IS NOT NULL""") == [(2,)]


@pytest.mark.parametrize("rows_per_statement", [1, 2])
def test_an_update_is_a_change_when_the_binary_image_changes(conn, rows_per_statement):
    """Equal is not unchanged: 1.0 -> 1.00, 0 -> -0, a jsonb number's scale, a
    case-insensitive collation's 'a' -> 'A' (where PostgreSQL has ICU) are changes;
    the same values are not. Built-in types whose equality is their image (integers,
    text of a deterministic collation, ...) are compared by IS DISTINCT FROM, the
    others by image: both agree."""
    try:
        conn.execute("CREATE COLLATION IF NOT EXISTS ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)")
        icu = True
    except psycopg.errors.FeatureNotSupported:  # "ICU is not supported in this build"
        icu = False
    conn.execute(f"""CREATE TABLE t (id int PRIMARY KEY, n numeric, f float8, j jsonb, c text {"COLLATE ci" if icu else ""},
                                     t text, b bool, u uuid)""")
    conn.execute("SELECT track_table('t')")
    conn.execute("""INSERT INTO t SELECT g, 1.0, 0, '{"a": 1.0}', 'a', 'x', true, '00000000-0000-0000-0000-000000000001'
                      FROM generate_series(1, %s) g""", [rows_per_statement])
    changes = ["n = 1.00", "f = '-0'", """j = '{"a": 1.00}'""", "c = 'A'", "t = 'y'", "b = false",
               "u = '00000000-0000-0000-0000-000000000002'", "id = id + 10"]
    for change in changes:
        column = change.split(" = ")[0]
        conn.execute(f"UPDATE t SET {change}")
        conn.execute(f"UPDATE t SET {column} = {column}")  # the same values: no event
    assert rows(conn, "SELECT count(*) FROM t_event WHERE pgh_operation = 'UPDATE'") == [(len(changes) * rows_per_statement,)]
    assert rows(conn, "SELECT n::text, f::text, j::text, c, t, b, u::text FROM t_event ORDER BY pgh_id DESC LIMIT 1") == [
        ("1.00", "-0", '{"a": 1.00}', "A", "y", False, "00000000-0000-0000-0000-000000000002")]


@pytest.mark.parametrize("rows_per_statement", [1, 2])
def test_an_update_is_told_by_its_watched_columns_toasted_and_dropped_ones_too(conn, rows_per_statement):
    """Every column watched (the default tracker) or some (changed => ...): an
    update is recorded when a watched column's value changed, a large TOASTed
    value and a column dropped after the rows were written (its old value still
    in them) included."""
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, gone int, a int, n numeric, doc text)")
    conn.execute("INSERT INTO t (id, gone) SELECT g, 7 FROM generate_series(1, %s) g", [rows_per_statement])
    conn.execute("ALTER TABLE t DROP COLUMN gone")
    conn.execute("SELECT track_table('t')")
    conn.execute("SELECT track_table('t', label => 'a_changed', operations => '{update}', changed => '{a}')")
    conn.execute("""UPDATE t SET a = 1, n = 1.0, doc = (SELECT string_agg(md5(id || '.' || i), '') FROM generate_series(1, 500) i) || 'a'""")
    (before,) = rows(conn, "SELECT max(pgh_id) FROM t_event")[0]
    toast = rows(conn, "SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 't'::regclass")[0][0]
    assert rows(conn, f"SELECT count(DISTINCT chunk_id) FROM {toast}") == [(rows_per_statement,)]  # stored out of line
    for change in ["a = a", "n = n", "doc = doc", "doc = doc || ''",     # the same values: no event
                   "n = 1.00", "doc = doc || 'x'", "a = a + 1", "id = id + 10"]:
        conn.execute(f"UPDATE t SET {change}")
    expected = [
        (label, a, n, last, row if moved else None)
        for labels, a, n, last, moved in [
            (["update"], 1, "1.00", "a", False),              # n = 1.00
            (["update"], 1, "1.00", "x", False),              # doc = doc || 'x'
            (["a_changed", "update"], 2, "1.00", "x", False),  # a = a + 1
            (["update"], 2, "1.00", "x", True)]               # id = id + 10
        for label in labels
        for row in range(1, rows_per_statement + 1)]
    recorded = rows(conn, """SELECT pgh_label, a, n::text, right(doc, 1), pgh_old_obj_id FROM t_event
                              WHERE pgh_id > %s ORDER BY pgh_id""", [before])
    assert sorted(recorded, key=repr) == sorted(expected, key=repr)
    if rows_per_statement == 1:
        assert recorded == expected


def test_single_row_updates_are_not_jit_compiled(conn):
    """The update trigger forbids nested loops (see above); the penalty cost that
    leaves on the plan must not make every single-row update pay a JIT compile."""
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, a int, b text, c numeric, d timestamptz)")
    conn.execute("SELECT track_table('t')")
    conn.execute("INSERT INTO t SELECT g, g, md5(g::text), g, now() FROM generate_series(1, 100) g")
    conn.execute("SET jit = on; SET jit_above_cost = 100000")
    conn.execute("SET statement_timeout = '100ms'")  # a JIT compile of the trigger's statement takes longer
    for i in range(1, 21):
        conn.execute("UPDATE t SET a = a + 1 WHERE id = %s", [i])
    conn.execute("RESET statement_timeout")
    assert rows(conn, "SELECT count(*) FROM t_event WHERE pgh_operation = 'UPDATE'") == [(20,)]


def test_generated_columns_stored_are_mirrored_virtual_are_left_out(conn):
    """Stored generated columns are recorded with their values. PostgreSQL 18's virtual
    generated columns have no value in transition tables: they are not mirrored (they
    follow from the mirrored columns), and asking for one is refused."""
    version = conn.info.server_version
    conn.execute("CREATE TABLE g (id int PRIMARY KEY, a int, twice int GENERATED ALWAYS AS (a * 2) STORED)")
    conn.execute("SELECT track_table('g')")
    conn.execute("INSERT INTO g (id, a) VALUES (1, 5)")
    assert rows(conn, "SELECT a, twice FROM g_event") == [(5, 10)]
    if version >= 180000:
        conn.execute("CREATE TABLE v (id int PRIMARY KEY, a int, thrice int GENERATED ALWAYS AS (a * 3) VIRTUAL)")
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("SELECT track_table('v', columns => '{id,a,thrice}')")
        conn.execute("SELECT track_table('v')")
        conn.execute("INSERT INTO v (id, a) VALUES (1, 5)")
        conn.execute("UPDATE v SET a = 6")
        assert rows(conn, "SELECT pgh_operation, id, a FROM v_event ORDER BY pgh_id") == [("INSERT", 1, 5), ("UPDATE", 1, 6)]
        assert rows(conn, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'v_event'::regclass AND attname = 'thrice'") == [(0,)]
    else:
        with pytest.raises(psycopg.errors.SyntaxError):  # VIRTUAL arrives in PostgreSQL 18
            conn.execute("CREATE TABLE v (id int PRIMARY KEY, a int, thrice int GENERATED ALWAYS AS (a * 3) VIRTUAL)")


def test_truncate_is_recorded_row_by_row_like_delete(conn):
    conn.execute("CREATE TABLE parent_t (id int PRIMARY KEY)")
    conn.execute("CREATE TABLE child_t (id int PRIMARY KEY, p int REFERENCES parent_t)")
    for t in ("parent_t", "child_t"):
        conn.execute("SELECT track_table(%s::regclass)", [t])
    conn.execute("INSERT INTO parent_t VALUES (1), (2); INSERT INTO child_t VALUES (10, 1)")
    with conn.transaction():
        conn.execute("SELECT set_history_context('{\"job\": \"reset\"}')")
        conn.execute("TRUNCATE parent_t CASCADE")
    assert rows(conn, "SELECT pgh_label, pgh_operation, pgh_obj_id, pgh_context FROM parent_t_event"
                      " WHERE pgh_operation = 'TRUNCATE' ORDER BY pgh_obj_id") == [
        ("delete", "TRUNCATE", 1, {"job": "reset"}), ("delete", "TRUNCATE", 2, {"job": "reset"})]
    assert rows(conn, "SELECT pgh_operation, pgh_obj_id, p FROM child_t_event WHERE pgh_operation = 'TRUNCATE'") == [
        ("TRUNCATE", 10, 1)]
    # A truncate that is rolled back leaves nothing.
    conn.execute("INSERT INTO parent_t VALUES (3)")
    with pytest.raises(psycopg.errors.DivisionByZero):
        with conn.transaction():
            conn.execute("TRUNCATE parent_t CASCADE")
            conn.execute("SELECT 1/0")
    assert rows(conn, "SELECT count(*) FROM parent_t_event WHERE pgh_obj_id = 3 AND pgh_operation = 'TRUNCATE'") == [(0,)]
