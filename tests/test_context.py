"""Context: from Python (sync and async), per transaction, across concurrent
clients and pooled connections."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import threading
import uuid
from typing import Any

import psycopg
import pytest

import history_track
from conftest import rows


@pytest.fixture
def notes(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    conn.execute("SELECT track_table('notes')")
    return conn


def contexts(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return rows(conn, "SELECT pgh_operation, id, pgh_context FROM notes_event ORDER BY pgh_id")


def test_autocommit_block_runs_in_one_transaction_with_the_context(notes):
    with history_track.context(notes, user="alice", at=dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc),
                               amount=decimal.Decimal("1.10"), ref=uuid.UUID(int=1), tags={"x"}) as ctx:
        notes.execute("INSERT INTO notes VALUES (1, 'a')")
        notes.execute("UPDATE notes SET body = 'b'")
    expected = {"user": "alice", "at": "2026-01-02T03:04:00+00:00", "amount": "1.10",
                "ref": "00000000-0000-0000-0000-000000000001", "tags": ["x"]}
    assert contexts(notes) == [("INSERT", 1, expected), ("UPDATE", 1, expected)]
    assert rows(notes, "SELECT DISTINCT pgh_context_id FROM notes_event") == [(ctx.context_id,)]
    notes.execute("INSERT INTO notes VALUES (2, 'after')")  # the context ended with the block
    assert contexts(notes)[-1] == ("INSERT", 2, None)


def test_an_exception_rolls_the_block_back(notes):
    with pytest.raises(RuntimeError):
        with history_track.context(notes, user="alice"):
            notes.execute("INSERT INTO notes VALUES (1, 'a')")
            raise RuntimeError
    assert contexts(notes) == [] and rows(notes, "SELECT count(*) FROM notes") == [(0,)]


def test_nesting_merges_and_leaving_restores(notes):
    with notes.transaction():
        with history_track.context(notes, user="alice", request="r1"):
            notes.execute("INSERT INTO notes VALUES (1, 'a')")
            with history_track.context(notes, request="r2", step=2):
                notes.execute("INSERT INTO notes VALUES (2, 'b')")
            notes.execute("INSERT INTO notes VALUES (3, 'c')")
        notes.execute("INSERT INTO notes VALUES (4, 'd')")
    assert contexts(notes) == [
        ("INSERT", 1, {"user": "alice", "request": "r1"}),
        ("INSERT", 2, {"user": "alice", "request": "r2", "step": 2}),
        ("INSERT", 3, {"user": "alice", "request": "r1"}),
        ("INSERT", 4, None),
    ]
    assert rows(notes, "SELECT count(DISTINCT pgh_context_id) FROM notes_event") == [(1,)]


def test_decorator_and_custom_encoder(notes):
    class Upper(history_track.ContextEncoder):
        def default(self, o: Any) -> Any:
            if isinstance(o, bytes):
                return o.decode().upper()
            return super().default(o)

    @history_track.context(notes, job="import", blob=b"abc", encoder=Upper)
    def job() -> None:
        notes.execute("INSERT INTO notes VALUES (1, 'a')")

    job()
    job.__wrapped__  # functools.wraps kept the function
    notes.execute("DELETE FROM notes")
    job()
    assert [c[2] for c in contexts(notes)] == [{"job": "import", "blob": "ABC"}, None, {"job": "import", "blob": "ABC"}]


def test_async_twin(history_track_dsn, notes):
    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(history_track_dsn, autocommit=True) as aconn:
            async with history_track.context(aconn, user="async"):
                await aconn.execute("INSERT INTO notes VALUES (1, 'a')")

            @history_track.context(aconn, user="decorated")
            async def write() -> None:
                await aconn.execute("INSERT INTO notes VALUES (2, 'b')")

            await write()

    asyncio.run(main())
    assert contexts(notes) == [("INSERT", 1, {"user": "async"}), ("INSERT", 2, {"user": "decorated"})]


def test_wrong_flavour_of_connection_is_refused(notes):
    with pytest.raises(TypeError):
        async def main() -> None:
            async with history_track.context(notes, user="x"):
                pass
        asyncio.run(main())


def test_concurrent_clients_each_record_their_own_context(notes, history_track_dsn):
    per_client = 40

    def client(n: int) -> None:
        with psycopg.connect(history_track_dsn, autocommit=True) as c:
            for k in range(per_client):
                with history_track.context(c, client=n, k=k):
                    c.execute("INSERT INTO notes VALUES (%s, %s)", [n * 1000 + k, f"{n}/{k}"])
                    c.execute("UPDATE notes SET body = body || '!' WHERE id = %s", [n * 1000 + k])

    threads = [threading.Thread(target=client, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    bad = rows(notes, """
        SELECT count(*) FROM notes_event
         WHERE (pgh_context->>'client')::int * 1000 + (pgh_context->>'k')::int <> id""")
    assert bad == [(0,)]
    assert rows(notes, "SELECT count(*), count(DISTINCT pgh_context_id) FROM notes_event") == [(400, 200)]
    # Both events of one transaction share its context id, and no other transaction does.
    assert rows(notes, "SELECT count(*) FROM (SELECT pgh_context_id FROM notes_event GROUP BY 1"
                       " HAVING count(DISTINCT id) <> 1) s") == [(0,)]


def test_pooled_connection_never_leaks_context_between_transactions(notes):
    """A transaction pooler hands one server connection to many clients, one
    transaction at a time: the context must end with each transaction."""
    server_conn = notes
    for client, with_context in [("a", True), ("b", False), ("c", True), ("d", False)]:
        with server_conn.transaction():
            if with_context:
                server_conn.execute("SELECT set_config('history_track.context', %s, true)",
                                    [f'{{"client": "{client}"}}'])
            server_conn.execute("INSERT INTO notes VALUES (%s, %s)", [ord(client), client])
    assert [c[2] for c in contexts(notes)] == [{"client": "a"}, None, {"client": "c"}, None]
    assert rows(notes, "SELECT current_setting('history_track.context', true)") in ([(None,)], [("",)])


def test_session_level_setting_applies_to_every_later_transaction(notes):
    notes.execute("SET history_track.context = '{\"app\": \"batch\"}'")
    notes.execute("INSERT INTO notes VALUES (1, 'a')")
    notes.execute("INSERT INTO notes VALUES (2, 'b')")
    with history_track.context(notes, user="x"):
        notes.execute("INSERT INTO notes VALUES (3, 'c')")
    notes.execute("RESET history_track.context")
    notes.execute("INSERT INTO notes VALUES (4, 'd')")
    assert [c[2] for c in contexts(notes)] == [{"app": "batch"}, {"app": "batch"}, {"app": "batch", "user": "x"}, None]
    assert rows(notes, "SELECT count(DISTINCT pgh_context_id) FROM notes_event") == [(3,)]


@pytest.mark.parametrize(("setting", "sqlstate"), [("not json", "22P02"), ("[1]", "22023"), ("42", "22023")])
def test_malformed_setting_fails_the_write(notes, setting, sqlstate):
    with pytest.raises(psycopg.Error) as info:
        with notes.transaction():
            notes.execute("SELECT set_config('history_track.context', %s, true)", [setting])
            notes.execute("INSERT INTO notes VALUES (1, 'a')")
    assert info.value.sqlstate == sqlstate
    assert info.value.diag.message_primary.startswith("history_track.context ")
    assert rows(notes, "SELECT count(*) FROM notes") == [(0,)]


def test_context_id_cannot_be_chosen_by_the_application(notes):
    with notes.transaction():
        notes.execute("SELECT set_config('history_track.context_id', %s, true)", [str(uuid.UUID(int=7))])
        notes.execute("SELECT set_config('history_track.context', '{\"id\": \"00000000-0000-0000-0000-000000000007\"}', true)")
        notes.execute("INSERT INTO notes VALUES (1, 'a')")
    (ctx_id,) = rows(notes, "SELECT pgh_context_id FROM notes_event")[0]
    assert ctx_id != uuid.UUID(int=7)


def test_python_api_finds_a_contexts_events_and_records_manual_ones(notes):
    notes.execute("CREATE TABLE pairs (a int, b text, PRIMARY KEY (a, b)); SELECT track_table('pairs')")
    with history_track.context(notes, user="eve") as ctx:
        notes.execute("INSERT INTO notes VALUES (1, 'a')")
        notes.execute("INSERT INTO pairs VALUES (1, 'x')")
        history_track.record_event(notes, "pairs", [1, "x"], "approved", {"by": "boss"})
        history_track.record_event(notes, "notes", 1, "read")
    got = [(e.table_name, e.label, e.operation, e.obj_id, e.context) for e in history_track.context_events(notes, ctx.context_id)]
    assert got == [
        ("notes", "insert", "INSERT", 1, {"user": "eve"}),
        ("notes", "read", "MANUAL", 1, {"user": "eve"}),
        ("pairs", "insert", "INSERT", [1, "x"], {"user": "eve"}),
        ("pairs", "approved", "MANUAL", [1, "x"], {"user": "eve", "by": "boss"}),
    ]


def test_context_ids_carry_their_transactions_time_and_find_late_writes(notes):
    ids = []
    for n in range(3):
        with notes.transaction():
            ids.append(notes.execute("SELECT set_history_context(%s::jsonb)", [f'{{"n": {n}}}']).fetchone()[0])
            notes.execute("SELECT pg_sleep(0.02)")  # the writes come well after the transaction began
            notes.execute("INSERT INTO notes VALUES (%s, 'x')", [n])
    assert ids == sorted(ids)  # UUIDv7 layout: later transactions sort later
    assert all(i.version == 7 for i in ids)
    for n, ctx in enumerate(ids):
        assert [e.data["id"] for e in history_track.context_events(notes, ctx)] == [n]
    started = rows(notes, "SELECT history_track._context_time(%s), min(pgh_created_at) FROM notes_event"
                          " WHERE pgh_context_id = %s", [ids[0], ids[0]])[0]
    assert abs((started[0] - started[1]).total_seconds()) < 0.002


def test_a_context_id_is_one_per_transaction_whatever_the_session_changes(notes):
    """The id is derived from the transaction (its id, start, the database and
    the server's start), nothing the session sets: a time zone changed in the
    middle does not change it; the next transaction gets another."""
    with notes.transaction():
        (first,) = notes.execute("""SELECT set_history_context('{"user": "tz"}')""").fetchone()
        notes.execute("INSERT INTO notes VALUES (1, 'a')")
        notes.execute("SET LOCAL TimeZone = 'Pacific/Kiritimati'")
        notes.execute("SET LOCAL DateStyle = 'German'")
        notes.execute("INSERT INTO notes VALUES (2, 'b')")
        (again,) = notes.execute("SELECT history_track._context_id()").fetchone()
    with notes.transaction():
        notes.execute("""SELECT set_history_context('{"user": "tz"}')""")
        notes.execute("INSERT INTO notes VALUES (3, 'c')")
    got = rows(notes, "SELECT id, pgh_context_id FROM notes_event ORDER BY id")
    assert again == first and got[0] == (1, first) and got[1] == (2, first)
    assert got[2][1] != first and got[2][1].version == 7 and got[2][1].variant == uuid.RFC_4122


def test_context_lookup_uses_the_time_index(notes):
    notes.execute("INSERT INTO notes SELECT g, 'bulk' FROM generate_series(100, 60099) g")
    notes.execute("ANALYZE notes_event")
    plan = "\n".join(r[0] for r in rows(notes, """
        EXPLAIN SELECT * FROM notes_event e
         WHERE e.pgh_created_at >= now() - interval '1 ms' AND e.pgh_created_at < now() + interval '2 ms'
           AND e.pgh_context_id = gen_random_uuid()"""))
    assert "notes_event_pgh_created_at_idx" in plan, plan


@pytest.mark.parametrize(
    ("setting", "recorded", "error"),
    [
        # The usual context, a JSON object of up to 1 kB, is only parsed ...
        ('{"user": "alice"}', {"user": "alice"}, None),
        ('{"user": "alice"}\n ', {"user": "alice"}, None),
        ("{}", {}, None),
        ('{"user": ', None, ("22P02", "history_track.context is not valid JSON")),
        ('{"a": 1} {"b": 2}', None, ("22P02", "history_track.context is not valid JSON")),
        # ... anything else takes the full checks, with the same outcome.
        (' \t{"user": "alice"}', {"user": "alice"}, None),
        ('{"blob": "' + "x" * 2000 + '"}', {"blob": "x" * 2000}, None),
        ('[{"user": "alice"}]', None, ("22023", "history_track.context must be a JSON object, not array")),
        ("user=alice", None, ("22P02", "history_track.context is not valid JSON")),
        ('"x' + "y" * 2000 + '"', None, ("22023", "history_track.context must be a JSON object, not string")),
        ("", None, None),
    ],
)
def test_every_shape_of_the_setting_is_recorded_or_refused_as_the_checks_say(notes, setting, recorded, error):
    """The triggers parse the usual context without the full checks
    (_context_json): valid JSON that starts with "{" is an object, and up to
    1 kB no limit applies. Every other setting goes through _context_checked;
    both give the same events and the same errors, for INSERT, UPDATE and
    DELETE alike, and the same as set_history_context() reads."""
    for statement in ["INSERT INTO notes VALUES (1, 'a')", "UPDATE notes SET body = 'b'", "DELETE FROM notes"]:
        if error is None:
            with notes.transaction():
                notes.execute("SELECT set_config('history_track.context', %s, true)", [setting])
                notes.execute(statement)
                (read,) = notes.execute("SELECT (history_track._context()).context").fetchone()
            assert read == recorded
        else:
            with pytest.raises(psycopg.Error) as info:
                with notes.transaction():
                    notes.execute("SELECT set_config('history_track.context', %s, true)", [setting])
                    notes.execute(statement)
            assert (info.value.sqlstate, info.value.diag.message_primary) == error
            notes.execute(statement)    # recorded without a context instead, to go on
    got = rows(notes, "SELECT pgh_operation, pgh_context, pgh_context_id IS NOT NULL FROM notes_event ORDER BY pgh_id")
    kept = recorded if error is None else None
    assert got == [(op, kept, kept is not None) for op in ("INSERT", "UPDATE", "DELETE")]
