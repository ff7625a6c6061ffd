"""Citus: tracked tables distributed over a real cluster (doc/scale-out.md).

Starts, once for the module, a Citus 14 cluster on this machine: a coordinator
and two workers, each a TemporaryServer of the PostgreSQL 17 tree Citus was
built into by tools/citus.py (history_track.cluster.TemporaryCluster), with
CREATE EXTENSION history_track on the coordinator (Citus creates it on the
workers). Each test works on tables of its own names.

The module is skipped only when there is no Citus build for the PostgreSQL
the suite runs (Citus 14 is built for PostgreSQL 17: the suite's PostgreSQL 17
run, `python3 tools/all_majors.py 17`, builds it); the skip says how to get
one. Under CI (CI=true) a missing build fails instead.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from history_track.cluster import TemporaryCluster
from history_track.install import create_extension
from history_track.pytest_plugin import install_mode
from history_track.server import Installation

from conftest import ROOT
from test_replay import COLUMNS, VALUES, _row

sys.path.insert(0, str(ROOT / "tools"))
import citus as citus_build  # noqa: E402  (tools/citus.py: where the build is cached)

HOW = (
    "build it with `python3 tools/citus.py` (Citus 14.0.1 from ../shared/citus/citus-14.0.1.tar.gz into a copy of "
    "PostgreSQL 17, cached; Debian build deps: liblz4-dev libzstd-dev libkrb5-dev libssl-dev libselinux1-dev "
    "libxslt1-dev libpam0g-dev libreadline-dev), or point $HISTORY_TRACK_CITUS_PG_CONFIG at the pg_config of a "
    "PostgreSQL 17 with Citus 14 installed; then run this file with "
    "--history-track-pg-config=<that PostgreSQL 17's pg_config>"
)


def _citus_pg_config(config: pytest.Config) -> str:
    """The pg_config of the Citus build for the suite's PostgreSQL, or a skip
    (a failure under CI) that says how to get one."""
    if install_mode(config) == "no-extension":
        pytest.skip(
            "Citus creates history_track on its workers as an extension: run with --history-track-install=extension"
        )
    suite = Installation.find(config.getoption("--history-track-pg-config"))
    found = os.environ.get("HISTORY_TRACK_CITUS_PG_CONFIG") or citus_build.find()
    reason = None
    if suite.major != int(citus_build.PG_MAJOR):
        reason = (
            f"no Citus build for PostgreSQL {suite.major} (Citus is built for PostgreSQL {citus_build.PG_MAJOR}): {HOW}"
        )
    elif found is None:
        reason = f"no Citus build: {HOW}"
    if reason is None:
        assert found is not None
        return found
    if os.environ.get("CI") == "true" and suite.major == int(citus_build.PG_MAJOR):
        pytest.fail(f"CI must run the Citus tests, and {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[TemporaryCluster]:
    with TemporaryCluster(_citus_pg_config(request.config), workers=2) as started:
        with psycopg.connect(started.coordinator.conninfo(), autocommit=True) as conn:
            create_extension(conn)
        yield started


@pytest.fixture
def coord(cluster: TemporaryCluster) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(cluster.coordinator.conninfo(), autocommit=True) as conn:
        yield conn


def rows(conn: psycopg.Connection[Any], query: str, params: Any = None) -> list[tuple[Any, ...]]:
    return conn.execute(query, params).fetchall()


def distribute(conn: psycopg.Connection[Any], table: str, column: str = "id") -> None:
    conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, status text, amount numeric)")
    conn.execute("SELECT create_distributed_table(%s, %s, shard_count => 4)", [table, column])


def events(conn: psycopg.Connection[Any], table: str) -> list[tuple[Any, ...]]:
    """The event rows of a table, as a single node would write them: per row,
    in order (pgh_id orders the events of one row, which all are on one shard)."""
    return rows(
        conn,
        f"SELECT pgh_label, pgh_operation, pgh_obj_id, id, status, amount, pgh_old_obj_id, "
        f"pgh_statement_id IS NOT NULL FROM {table}_event ORDER BY pgh_obj_id, pgh_id",
    )


def placements(conn: psycopg.Connection[Any], table: str) -> dict[str, int]:
    """shardminvalue -> the node group holding that shard of table."""
    return dict(
        rows(
            conn,
            "SELECT s.shardminvalue, p.groupid FROM pg_dist_shard AS s "
            "JOIN pg_dist_placement AS p ON p.shardid = s.shardid WHERE s.logicalrelid = %s::regclass",
            [table],
        )
    )


def test_the_event_table_is_distributed_colocated_by_the_same_column(coord):
    distribute(coord, "colo")
    assert rows(coord, "SELECT track_table('colo')::text") == [("colo_event",)]
    assert rows(
        coord,
        "SELECT logicalrelid::text, partmethod, column_to_column_name(logicalrelid, partkey), colocationid "
        "FROM pg_dist_partition WHERE logicalrelid IN ('colo'::regclass, 'colo_event'::regclass) "
        "ORDER BY 1",
    ) == [
        (
            "colo",
            "h",
            "id",
            rows(coord, "SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'colo'::regclass")[0][0],
        ),
        (
            "colo_event",
            "h",
            "id",
            rows(coord, "SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'colo'::regclass")[0][0],
        ),
    ]
    # Citus' rule: the distribution column in every unique index.
    assert rows(
        coord,
        "SELECT array_agg(a.attname::text ORDER BY k.n) FROM pg_index AS i "
        "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
        "JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = 'colo_event'::regclass AND i.indisunique",
    ) == [(["pgh_id", "id"],)]
    # Shard n of the table and shard n of its history on the same node.
    table, history = placements(coord, "colo"), placements(coord, "colo_event")
    assert table == history and len(set(table.values())) == 2
    # Our statement triggers on every shard (TRUNCATE's stays on the
    # distributed table: Citus puts no TRUNCATE trigger on shards).
    assert (
        rows(
            coord,
            "SELECT result FROM run_command_on_shards('colo', $$SELECT string_agg(regexp_replace(tgname::text, '_[0-9]+$', ''), ',' "
            "ORDER BY tgname) FROM pg_trigger WHERE tgrelid = '%s'::regclass AND tgname LIKE 'history_track%%'$$) "
            "ORDER BY shardid",
        )
        == [("history_track_delete,history_track_insert,history_track_update",)] * 4
    )
    assert rows(
        coord,
        "SELECT tgname::text FROM pg_trigger WHERE tgrelid = 'colo'::regclass AND tgname LIKE 'history_track%' "
        "ORDER BY 1",
    ) == [("history_track_delete",), ("history_track_insert",), ("history_track_truncate",), ("history_track_update",)]


WORKLOAD = [
    # multi-shard INSERT (rows on every shard), a single-shard router UPDATE,
    # a multi-shard UPDATE, an UPDATE that changes nothing (no event), a
    # multi-shard DELETE
    "INSERT INTO {t} VALUES (1, 'new', 10), (2, 'new', 20), (3, 'new', 30), (4, 'new', 40), (5, 'new', 50), (6, 'new', 60)",
    "UPDATE {t} SET status = 'paid' WHERE id = 1",
    "UPDATE {t} SET amount = amount * 2 WHERE id > 2",
    "UPDATE {t} SET status = status",
    "DELETE FROM {t} WHERE id IN (2, 5)",
    # INSERT ... SELECT from a table distributed by another column: Citus repartitions it
    "INSERT INTO {t} SELECT id, 'copied', k FROM source_other",
]


def run_workload(conn: psycopg.Connection[Any], table: str) -> None:
    for statement in WORKLOAD:
        conn.execute(statement.format(t=table))
    with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
        for row in [(20, "copy", 1), (21, "copy", 2), (22, "copy", 3)]:
            copy.write_row(row)


def test_every_write_is_recorded_once_with_the_events_a_single_node_writes(coord, cluster):
    coord.execute("CREATE TABLE source_other (k int, id int)")
    coord.execute("SELECT create_distributed_table('source_other', 'k', shard_count => 4)")
    coord.execute("INSERT INTO source_other SELECT g, 10 + g FROM generate_series(1, 5) AS g")
    distribute(coord, "dist")
    coord.execute("CREATE TABLE single (id int PRIMARY KEY, status text, amount numeric)")  # not Citus': one node
    coord.execute("SELECT track_table('dist'), track_table('single')")
    for table in ("dist", "single"):
        run_workload(coord, table)
    # A write issued on a worker (Citus syncs its metadata to them).
    with psycopg.connect(cluster.workers[0].conninfo(), autocommit=True) as worker:
        worker.execute("UPDATE dist SET status = 'worker' WHERE id IN (3, 21)")
        worker.execute("INSERT INTO dist VALUES (30, 'worker', 0)")
    coord.execute("UPDATE single SET status = 'worker' WHERE id IN (3, 21)")
    coord.execute("INSERT INTO single VALUES (30, 'worker', 0)")

    recorded = events(coord, "dist")
    assert recorded == events(coord, "single")
    assert recorded[:8] == [
        ("insert", "INSERT", 1, 1, "new", 10, None, False),
        ("update", "UPDATE", 1, 1, "paid", 10, None, False),
        ("insert", "INSERT", 2, 2, "new", 20, None, False),
        ("delete", "DELETE", 2, 2, "new", 20, None, False),
        ("insert", "INSERT", 3, 3, "new", 30, None, False),
        ("update", "UPDATE", 3, 3, "new", 60, None, False),
        ("update", "UPDATE", 3, 3, "worker", 60, None, False),
        ("insert", "INSERT", 4, 4, "new", 40, None, False),
    ]
    # Each write once: 6 + 1 + 4 + 2 + 5 + 3 + 2 + 1 events.
    assert len(recorded) == 24
    assert rows(coord, "SELECT pgh_obj_id, status FROM dist_event WHERE status IN ('copied', 'copy') ORDER BY 1") == [
        (11, "copied"),
        (12, "copied"),
        (13, "copied"),
        (14, "copied"),
        (15, "copied"),
        (20, "copy"),
        (21, "copy"),
        (22, "copy"),
    ]
    # Every event's id is unique across the cluster.
    assert rows(coord, "SELECT count(DISTINCT pgh_id) = count(*) FROM dist_event") == [(True,)]


def test_a_shards_events_are_on_the_shards_node(coord, cluster):
    distribute(coord, "local_ev")
    coord.execute("SELECT track_table('local_ev')")
    coord.execute("INSERT INTO local_ev SELECT g, 'x', g FROM generate_series(1, 40) AS g")
    coord.execute("UPDATE local_ev SET status = 'y'")
    per_node = []
    for worker in cluster.workers:
        with psycopg.connect(worker.conninfo(), autocommit=True) as conn:
            conn.execute("SET citus.override_table_visibility = off")  # see the shards
            shards = rows(
                conn,
                "SELECT c.relname::text FROM pg_class AS c "
                "WHERE c.relname ~ '^local_ev_[0-9]+$' AND c.relkind = 'r' ORDER BY 1",
            )
            event_shards = rows(
                conn,
                "SELECT c.relname::text FROM pg_class AS c "
                "WHERE c.relname ~ '^local_ev_event_[0-9]+$' AND c.relkind = 'r' ORDER BY 1",
            )
            assert len(shards) == 2 and len(event_shards) == 2
            ids = rows(conn, " UNION ".join(f"SELECT id FROM {s}" for (s,) in shards) + " ORDER BY 1")
            recorded = rows(
                conn,
                " UNION ALL ".join(f"SELECT id, pgh_operation FROM {s}" for (s,) in event_shards) + " ORDER BY 1, 2",
            )
            # The history of exactly the rows this node holds, every event here.
            assert recorded == [(i, op) for (i,) in ids for op in ("INSERT", "UPDATE")]
            per_node.append(len(ids))
    assert sum(per_node) == 40 and min(per_node) > 0


def test_truncate_is_refused_from_the_coordinator_and_from_a_worker(coord, cluster):
    """Citus puts no TRUNCATE trigger on shards: ours fires on the distributed
    table, on the node TRUNCATE is issued on, where its events would be
    numbered out of the shards' order. Refused, rows kept; DELETE is recorded."""
    distribute(coord, "trunc")
    coord.execute("SELECT track_table('trunc')")
    coord.execute("INSERT INTO trunc VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)")
    with pytest.raises(psycopg.errors.FeatureNotSupported) as refused:
        coord.execute("TRUNCATE trunc")
    assert refused.value.diag.message_primary == "TRUNCATE of tracked distributed table public.trunc is not supported"
    assert refused.value.diag.message_hint == "DELETE FROM public.trunc; is recorded shard by shard."
    with psycopg.connect(cluster.workers[1].conninfo(), autocommit=True) as worker:
        with pytest.raises(psycopg.errors.FeatureNotSupported) as refused:
            worker.execute("TRUNCATE trunc")
        assert refused.value.diag.sqlstate == "0A000"
    assert rows(coord, "SELECT count(*) FROM trunc") == [(3,)]
    coord.execute("DELETE FROM trunc")
    assert rows(
        coord,
        "SELECT pgh_operation, pgh_obj_id, status FROM trunc_event WHERE pgh_operation = 'DELETE' ORDER BY pgh_obj_id",
    ) == [("DELETE", 1, "a"), ("DELETE", 2, "b"), ("DELETE", 3, "c")]


def test_one_context_id_and_metadata_for_a_distributed_transaction(coord):
    distribute(coord, "ctx")
    coord.execute("SELECT track_table('ctx')")
    coord.execute("INSERT INTO ctx SELECT g, 'new', g FROM generate_series(1, 8) AS g")
    with coord.transaction():
        (context_id,) = coord.execute('SELECT set_history_context(\'{"user": "alice"}\')').fetchone()
        coord.execute("UPDATE ctx SET status = 'paid'")  # every shard, both workers
        coord.execute("INSERT INTO ctx VALUES (9, 'new', 9)")  # one shard
        (again,) = coord.execute("SELECT set_history_context('{\"request\": 7}')").fetchone()
        coord.execute("DELETE FROM ctx WHERE id = 1")
    assert again == context_id
    got = rows(
        coord,
        "SELECT pgh_operation, pgh_obj_id, pgh_context_id, pgh_context FROM ctx_event "
        "WHERE pgh_context_id IS NOT NULL ORDER BY pgh_obj_id, pgh_id",
    )
    alice = {"user": "alice"}
    assert got == (
        [("UPDATE", i, context_id, alice) for i in range(1, 9)][:1]
        + [("DELETE", 1, context_id, {"user": "alice", "request": 7})]
        + [("UPDATE", i, context_id, alice) for i in range(2, 9)]
        + [("INSERT", 9, context_id, alice)]
    )
    # The transaction wrote on both workers.
    nodes = rows(
        coord,
        "SELECT DISTINCT p.groupid FROM pg_dist_shard AS s JOIN pg_dist_placement AS p USING (shardid) "
        "WHERE s.logicalrelid = 'ctx_event'::regclass",
    )
    assert len(nodes) == 2
    # Another transaction: another id. Without context: none.
    with coord.transaction():
        (other,) = coord.execute('SELECT set_history_context(\'{"user": "bob"}\')').fetchone()
        coord.execute("UPDATE ctx SET status = 'bob'")
    assert other != context_id
    assert rows(coord, "SELECT DISTINCT pgh_context_id, pgh_context FROM ctx_event WHERE status = 'bob'") == [
        (other, {"user": "bob"})
    ]
    coord.execute("UPDATE ctx SET status = 'none'")
    assert rows(coord, "SELECT DISTINCT pgh_context_id, pgh_context FROM ctx_event WHERE status = 'none'") == [
        (None, None)
    ]


def test_set_local_of_the_setting_reaches_the_workers_with_citus_set_propagation(coord):
    """The setting itself, for any client or pooler: SET LOCAL, which Citus
    passes on to the workers with citus.propagate_set_commands = 'local'."""
    distribute(coord, "ctx_set")
    coord.execute("SELECT track_table('ctx_set')")
    coord.execute("INSERT INTO ctx_set SELECT g, 'new', g FROM generate_series(1, 6) AS g")
    with coord.transaction():
        coord.execute("SET LOCAL citus.propagate_set_commands = 'local'")
        coord.execute("""SET LOCAL history_track.context = '{"job": "nightly"}'""")
        coord.execute("UPDATE ctx_set SET status = 'paid'")
    got = rows(coord, "SELECT pgh_context FROM ctx_set_event WHERE pgh_operation = 'UPDATE' ORDER BY pgh_obj_id")
    assert got == [({"job": "nightly"},)] * 6
    assert rows(coord, "SELECT count(DISTINCT pgh_context_id) FROM ctx_set_event WHERE pgh_operation = 'UPDATE'") == [
        (1,)
    ]


def test_the_context_reaches_the_workers_behind_a_transaction_pooler(coord, cluster):
    """PgBouncer in transaction mode with one server connection to the
    coordinator: three clients' transactions take turns on the same session.
    Every event, on every worker, carries exactly its own transaction's
    context (one id per transaction), and nothing of one transaction's
    context reaches the next."""
    import threading

    from pooler import pgbouncer

    distribute(coord, "pooled")
    coord.execute("SELECT track_table('pooled')")
    coord.execute("INSERT INTO pooled SELECT g, 'new', g FROM generate_series(1, 8) AS g")
    errors: list[BaseException] = []
    with pgbouncer(cluster.coordinator, cluster.database) as port:
        barrier = threading.Barrier(3)

        def work(name: str) -> None:
            try:
                with psycopg.connect(
                    f"host={cluster.coordinator.socket_dir} port={port} user=postgres dbname={cluster.database}",
                    autocommit=True,
                ) as conn:
                    barrier.wait()
                    for i in range(5):
                        with conn.transaction():
                            if name != "none":
                                conn.execute("SELECT set_history_context(%s)", [json.dumps({"user": name, "i": i})])
                            conn.execute("UPDATE pooled SET status = %s", [f"{name}-{i}"])  # every shard
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(name,)) for name in ("ann", "bob", "none")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    got = rows(
        coord,
        "SELECT status, pgh_context, count(*), count(DISTINCT pgh_context_id) FROM pooled_event "
        "WHERE pgh_operation = 'UPDATE' GROUP BY 1, 2 ORDER BY 1",
    )
    assert got == [
        (f"{name}-{i}", None if name == "none" else {"user": name, "i": i}, 8, 0 if name == "none" else 1)
        for name in ("ann", "bob", "none")
        for i in range(5)
    ]
    assert rows(coord, "SELECT count(DISTINCT pgh_context_id) FROM pooled_event") == [(10,)]


def test_reference_and_single_shard_tables_are_refused(coord):
    coord.execute("CREATE TABLE ref (id int PRIMARY KEY)")
    coord.execute("SELECT create_reference_table('ref')")
    with pytest.raises(psycopg.errors.FeatureNotSupported) as refused:
        coord.execute("SELECT track_table('ref')")
    assert refused.value.diag.message_primary == "history_track cannot track reference table public.ref"
    assert refused.value.diag.sqlstate == "0A000"
    coord.execute("CREATE TABLE one_shard (id int PRIMARY KEY)")
    coord.execute("SELECT create_distributed_table('one_shard', NULL)")  # what schema-based sharding makes
    with pytest.raises(psycopg.errors.FeatureNotSupported) as refused:
        coord.execute("SELECT track_table('one_shard')")
    assert refused.value.diag.message_primary == (
        "history_track cannot track public.one_shard: Citus manages it as a single-shard (schema-based sharding) table"
    )
    assert rows(coord, "SELECT count(*) FROM pg_class WHERE relname IN ('ref_event', 'one_shard_event')") == [(0,)]


def test_the_distribution_column_must_be_recorded(coord):
    coord.execute("CREATE TABLE by_k (id int, k int, note text, PRIMARY KEY (id, k))")
    coord.execute("SELECT create_distributed_table('by_k', 'k', shard_count => 4)")
    with pytest.raises(psycopg.errors.InvalidParameterValue) as refused:
        coord.execute("SELECT track_table('by_k', exclude => '{k}')")
    assert refused.value.diag.message_primary == 'the distribution column "k" of public.by_k must be recorded'
    assert (
        refused.value.diag.message_hint
        == "Keep it in the history: do not leave it out of columns, nor name it in exclude."
    )
    assert rows(coord, "SELECT count(*) FROM pg_class WHERE relname = 'by_k_event'") == [(0,)]
    assert rows(coord, "SELECT track_table('by_k')::text") == [("by_k_event",)]
    coord.execute("INSERT INTO by_k VALUES (1, 7, 'a'), (2, 8, 'b')")
    assert rows(coord, "SELECT pgh_obj_id, k, note FROM by_k_event ORDER BY k") == [
        ([1, 7], 7, "a"),
        ([2, 8], 8, "b"),
    ]


def test_a_tracked_table_is_distributed_by_tracking_it_again(coord):
    """Citus refuses to distribute a table with triggers; untrack it (its
    history stays), distribute it, track it again: its event table, history
    included, is distributed with it -- in one transaction, so no write
    falls between."""
    coord.execute("CREATE TABLE early (id int PRIMARY KEY, status text, amount numeric)")
    coord.execute("SELECT track_table('early')")
    coord.execute("INSERT INTO early VALUES (1, 'a', 1), (2, 'b', 2)")
    coord.execute("UPDATE early SET status = 'a2' WHERE id = 1")
    with pytest.raises(psycopg.errors.InternalError) as refused:
        coord.execute("SELECT create_distributed_table('early', 'id', shard_count => 4)")
    assert refused.value.diag.message_primary == 'cannot distribute relation "early" because it has triggers'
    with coord.transaction():
        coord.execute("SELECT untrack_table('early')")
        coord.execute("SELECT create_distributed_table('early', 'id', shard_count => 4)")
        coord.execute("SELECT track_table('early')")
    coord.execute("INSERT INTO early VALUES (3, 'c', 3)")
    coord.execute("UPDATE early SET status = 'x' WHERE id IN (1, 3)")
    assert rows(
        coord,
        "SELECT logicalrelid::text, partmethod FROM pg_dist_partition "
        "WHERE logicalrelid IN ('early'::regclass, 'early_event'::regclass) ORDER BY 1",
    ) == [("early", "h"), ("early_event", "h")]
    assert placements(coord, "early") == placements(coord, "early_event")
    assert rows(coord, "SELECT pgh_label, pgh_obj_id, status FROM early_event ORDER BY pgh_obj_id, pgh_id") == [
        ("insert", 1, "a"),
        ("update", 1, "a2"),
        ("update", 1, "x"),
        ("insert", 2, "b"),
        ("insert", 3, "c"),
        ("update", 3, "x"),
    ]


def test_untrack_table_removes_the_triggers_from_every_shard(coord):
    distribute(coord, "gone")
    coord.execute("SELECT track_table('gone')")
    coord.execute("INSERT INTO gone VALUES (1, 'a', 1)")
    coord.execute("SELECT untrack_table('gone', drop_events => true)")
    assert (
        rows(
            coord,
            "SELECT result FROM run_command_on_shards('gone', $$SELECT count(*) FROM pg_trigger "
            "WHERE tgrelid = '%s'::regclass AND NOT tgisinternal$$)",
        )
        == [("0",)] * 4
    )
    assert rows(coord, "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text = 'gone_event'") == [(0,)]
    coord.execute("INSERT INTO gone VALUES (2, 'b', 2)")  # not recorded, and no error
    assert rows(coord, "SELECT count(*) FROM gone") == [(2,)]


def test_history_is_read_from_one_shard_by_key_and_from_every_shard_whole(coord):
    distribute(coord, "readme")
    coord.execute("SELECT track_table('readme')")
    coord.execute("INSERT INTO readme SELECT g, 'new', g FROM generate_series(1, 8) AS g")
    (before,) = coord.execute("SELECT clock_timestamp()").fetchone()
    coord.execute("UPDATE readme SET status = 'paid' WHERE id IN (1, 2, 3)")
    coord.execute("DELETE FROM readme WHERE id = 8")
    assert rows(
        coord, "SELECT pgh_operation, pgh_obj_id, data, diff FROM history_events('readme', key => '2') ORDER BY pgh_id"
    ) == [
        (
            "INSERT",
            2,
            {"id": 2, "status": "new", "amount": 2},
            {"id": [None, 2], "status": [None, "new"], "amount": [None, 2]},
        ),
        ("UPDATE", 2, {"id": 2, "status": "paid", "amount": 2}, {"status": ["new", "paid"]}),
    ]
    assert rows(coord, "SELECT * FROM history_as_of(NULL::readme, %s, key => '2')", [before]) == [(2, "new", 2)]
    assert rows(coord, "SELECT * FROM history_as_of(NULL::readme, %s) ORDER BY id", [before]) == [
        (i, "new", i) for i in range(1, 9)
    ]
    assert rows(coord, "SELECT * FROM history_as_of(NULL::readme, now()) ORDER BY id") == rows(
        coord, "SELECT * FROM readme ORDER BY id"
    )
    # A context's events, across shards.
    with coord.transaction():
        (context_id,) = coord.execute('SELECT set_history_context(\'{"user": "carol"}\')').fetchone()
        coord.execute("UPDATE readme SET amount = 0 WHERE id IN (4, 5, 6, 7)")
    assert rows(
        coord,
        "SELECT table_name::text, pgh_obj_id, diff FROM history_events(context_id => %s) ORDER BY pgh_obj_id",
        [context_id],
    ) == [("readme", i, {"amount": [i, 0]}) for i in (4, 5, 6, 7)]
    assert rows(coord, "SELECT pgh_obj_id FROM history_context_events(%s) ORDER BY pgh_obj_id", [context_id]) == [
        (4,),
        (5,),
        (6,),
        (7,),
    ]


def test_what_is_not_supported_on_a_distributed_table_is_refused(coord):
    distribute(coord, "noway")
    coord.execute("SELECT track_table('noway')")
    coord.execute("INSERT INTO noway VALUES (1, 'a', 1)")
    for call, what in [
        ("SELECT prune_history('noway', now())", "prune_history()"),
        ("SELECT start_hash_chain('noway')", "start_hash_chain()"),
        ("SELECT track_table('noway', baseline => true)", "a baseline"),
        ("SELECT record_history_event('noway', '1', 'called')", "record_history_event()"),
        ("ALTER TABLE noway ADD COLUMN note text DEFAULT 'x'", "an ALTER TABLE that changes values without DML"),
        ("ALTER TABLE noway ALTER COLUMN amount TYPE float8", "an ALTER TABLE that changes values without DML"),
    ]:
        with pytest.raises(psycopg.errors.FeatureNotSupported) as refused:
            coord.execute(call)
        assert refused.value.diag.message_primary == f"{what} is not supported on distributed table public.noway"
    assert rows(coord, "SELECT count(*) FROM noway_event") == [(1,)]
    assert rows(
        coord,
        "SELECT attname::text FROM pg_attribute WHERE attrelid = 'noway'::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
    ) == [("id",), ("status",), ("amount",)]


def test_a_call_citus_sends_to_a_worker_is_refused_with_a_hint(coord):
    """Citus sends a query that reads one shard to its node whole, function
    calls included; history_track's catalog is the coordinator's."""
    distribute(coord, "sent")
    coord.execute("SELECT track_table('sent')")
    coord.execute("INSERT INTO sent VALUES (1, 'a', 1)")
    with pytest.raises(psycopg.errors.FeatureNotSupported) as refused:
        coord.execute("SELECT revert_row('sent', (SELECT max(pgh_id) FROM sent_event WHERE id = 1))")
    assert refused.value.diag.message_primary == (
        "history_track's functions run on the Citus coordinator, and this node is a worker"
    )
    assert refused.value.diag.message_hint == (
        "Call the function on the coordinator, in a query that reads no distributed table: pass values, not subqueries."
    )
    (event,) = coord.execute("SELECT max(pgh_id) FROM sent_event WHERE id = 1").fetchone()
    assert rows(coord, "SELECT revert_row('sent', %s)", [event]) == [(0,)]


REVERTED = [
    "INSERT INTO {t} SELECT g, 'new', g FROM generate_series(1, 8) AS g",
    "UPDATE {t} SET status = 'paid' WHERE id IN (1, 2, 3)",
    "DELETE FROM {t} WHERE id IN (4, 8)",
    "INSERT INTO {t} VALUES (9, 'late', 9)",
]


def test_revert_row_and_revert_table_write_and_record_what_a_single_node_does(coord):
    """Each revert on a distributed table and on a table of one node: the same
    rows written, the same rows after, the same events (labeled revert, on the
    shards' nodes, with the transaction's context)."""
    distribute(coord, "rev_dist")
    coord.execute("CREATE TABLE rev_single (id int PRIMARY KEY, status text, amount numeric)")
    coord.execute("SELECT track_table('rev_dist'), track_table('rev_single')")
    got = {}
    for table in ("rev_dist", "rev_single"):
        coord.execute(REVERTED[0].format(t=table))
        (start,) = coord.execute("SELECT clock_timestamp()").fetchone()
        for statement in REVERTED[1:]:
            coord.execute(statement.format(t=table))
        (middle,) = coord.execute("SELECT clock_timestamp()").fetchone()
        coord.execute(f"UPDATE {table} SET amount = 0 WHERE id = 2")
        written = []
        # One row back to a moment: updated back, re-inserted, deleted.
        written += [rows(coord, f"SELECT revert_row('{table}', 2, %s)", [middle])]
        written += [rows(coord, f"SELECT revert_row('{table}', '4', %s)", [start])]
        written += [rows(coord, f"SELECT revert_row('{table}', 9, %s)", [start])]
        # One row to an event's state.
        (event,) = coord.execute(
            f"SELECT pgh_id FROM {table}_event WHERE id = 1 AND pgh_operation = 'INSERT'"
        ).fetchone()
        written += [rows(coord, f"SELECT revert_row('{table}', %s)", [event])]
        # The whole table, with a context.
        with coord.transaction():
            coord.execute("""SELECT set_history_context('{"user": "ops"}')""")
            written += [rows(coord, f"SELECT revert_table('{table}', %s)", [middle])]
        written += [rows(coord, f"SELECT revert_table('{table}', %s)", [middle])]  # nothing left to write
        got[table] = (
            written,
            rows(coord, f"SELECT * FROM {table} ORDER BY id"),
            rows(
                coord,
                f"SELECT pgh_label, pgh_operation, pgh_obj_id, id, status, amount, pgh_context "
                f"FROM {table}_event WHERE pgh_label = 'revert' ORDER BY pgh_obj_id, pgh_id",
            ),
            rows(coord, f"SELECT count(DISTINCT pgh_context_id) FROM {table}_event WHERE pgh_context IS NOT NULL"),
        )
    ops = {"user": "ops"}
    assert got["rev_dist"] == got["rev_single"]
    assert got["rev_dist"] == (
        [[(1,)], [(1,)], [(1,)], [(1,)], [(3,)], [(0,)]],
        [(1, "paid", 1), (2, "paid", 2), (3, "paid", 3), (5, "new", 5), (6, "new", 6), (7, "new", 7), (9, "late", 9)],
        [
            ("revert", "UPDATE", 1, 1, "new", 1, None),
            ("revert", "UPDATE", 1, 1, "paid", 1, ops),
            ("revert", "UPDATE", 2, 2, "paid", 2, None),
            ("revert", "INSERT", 4, 4, "new", 4, None),
            ("revert", "DELETE", 4, 4, "new", 4, ops),
            ("revert", "DELETE", 9, 9, "late", 9, None),
            ("revert", "INSERT", 9, 9, "late", 9, ops),
        ],
        [(1,)],
    )
    # The label does not outlive the revert, on any node.
    coord.execute("UPDATE rev_dist SET amount = 1")
    assert rows(coord, "SELECT DISTINCT pgh_label FROM rev_dist_event WHERE amount = 1 AND id <> 1") == [("update",)]


def test_revert_row_to_an_event_of_a_table_with_a_generated_column(coord):
    """The event's row has NULL for a generated column (a revert does not write
    it), also one declared NOT NULL: as on a single node, the row goes back."""
    for table, distributed in (("gen_dist", True), ("gen_single", False)):
        coord.execute(
            f"CREATE TABLE {table} (id int PRIMARY KEY, n int, twice int GENERATED ALWAYS AS (n * 2) STORED NOT NULL)"
        )
        if distributed:
            coord.execute("SELECT create_distributed_table(%s, 'id', shard_count => 4)", [table])
        coord.execute("SELECT track_table(%s)", [table])
        coord.execute(f"INSERT INTO {table} (id, n) VALUES (1, 1), (2, 2)")
        coord.execute(f"UPDATE {table} SET n = n + 10")
        (event,) = coord.execute(
            f"SELECT pgh_id FROM {table}_event WHERE id = 1 AND pgh_operation = 'INSERT'"
        ).fetchone()
        assert rows(coord, "SELECT revert_row(%s, %s)", [table, event]) == [(1,)]
        assert rows(coord, f"SELECT * FROM {table} ORDER BY id") == [(1, 1, 2), (2, 12, 24)]


def test_alter_table_add_column_without_a_value_is_followed_on_every_shard(coord, cluster):
    """A column added without a default is NULL in every row, as the history
    replays it: nothing to record, so it is followed on a distributed table."""
    coord.execute("CREATE TABLE added (id int PRIMARY KEY, status text)")
    coord.execute("SELECT create_distributed_table('added', 'id', shard_count => 4)")
    coord.execute("SELECT track_table('added')")
    coord.execute("INSERT INTO added VALUES (1, 'a'), (2, 'b')")
    coord.execute("ALTER TABLE added ADD COLUMN note text")
    coord.execute("ALTER TABLE added ALTER COLUMN note SET DEFAULT 'none'")
    coord.execute("UPDATE added SET note = 'one' WHERE id = 1")
    coord.execute("INSERT INTO added (id, status) VALUES (3, 'c')")
    with psycopg.connect(cluster.workers[0].conninfo(), autocommit=True) as worker:
        worker.execute("INSERT INTO added VALUES (4, 'w', 'four')")
    assert rows(
        coord, "SELECT pgh_operation, pgh_obj_id, status, note FROM added_event ORDER BY pgh_obj_id, pgh_id"
    ) == [
        ("INSERT", 1, "a", None),
        ("UPDATE", 1, "a", "one"),
        ("INSERT", 2, "b", None),
        ("INSERT", 3, "c", "none"),
        ("INSERT", 4, "w", "four"),
    ]
    assert rows(coord, "SELECT * FROM history_as_of(NULL::added, now()) ORDER BY id") == rows(
        coord, "SELECT * FROM added ORDER BY id"
    )


def test_alter_table_drop_and_rename_column_are_followed_on_every_shard(coord, cluster):
    coord.execute("CREATE TABLE altered (id int PRIMARY KEY, status text, junk int)")
    coord.execute("SELECT create_distributed_table('altered', 'id', shard_count => 4)")
    coord.execute("SELECT track_table('altered')")
    coord.execute("INSERT INTO altered VALUES (1, 'a', 0), (2, 'b', 0)")
    coord.execute("ALTER TABLE altered DROP COLUMN junk")
    with coord.transaction():
        # Citus sends the row type's rename to the workers over one connection per node.
        coord.execute("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
        coord.execute("ALTER TABLE altered RENAME COLUMN status TO state")
    coord.execute("UPDATE altered SET state = 'z'")
    with psycopg.connect(cluster.workers[0].conninfo(), autocommit=True) as worker:
        worker.execute("INSERT INTO altered VALUES (3, 'w')")
    assert rows(
        coord, "SELECT pgh_operation, pgh_obj_id, state, junk FROM altered_event ORDER BY pgh_obj_id, pgh_id"
    ) == [
        ("INSERT", 1, "a", 0),
        ("UPDATE", 1, "z", None),
        ("INSERT", 2, "b", 0),
        ("UPDATE", 2, "z", None),
        ("INSERT", 3, "w", None),
    ]


def test_a_shard_move_keeps_the_history_colocated_and_in_order(coord, cluster):
    distribute(coord, "moved")
    coord.execute("SELECT track_table('moved')")
    coord.execute("INSERT INTO moved SELECT g, 'new', g FROM generate_series(1, 20) AS g")
    (shard, group) = coord.execute(
        "SELECT s.shardid, p.groupid FROM pg_dist_shard AS s JOIN pg_dist_placement AS p USING (shardid) "
        "WHERE s.logicalrelid = 'moved'::regclass ORDER BY p.groupid DESC, s.shardid LIMIT 1"
    ).fetchone()
    (source, target) = (
        (cluster.workers[1], cluster.workers[0]) if group == 2 else (cluster.workers[0], cluster.workers[1])
    )
    coord.execute(
        "SELECT citus_move_shard_placement(%s, %s, %s, %s, %s, shard_transfer_mode => 'block_writes')",
        [shard, str(source.socket_dir), source.port, str(target.socket_dir), target.port],
    )
    # The event shard moved with it (colocated), every event kept.
    assert placements(coord, "moved") == placements(coord, "moved_event")
    moved_ids = [
        i
        for (i,) in rows(
            coord,
            "SELECT id FROM moved WHERE get_shard_id_for_distribution_column('moved', id) = %s ORDER BY id",
            [shard],
        )
    ]
    assert moved_ids
    coord.execute("UPDATE moved SET status = 'after'")
    assert rows(coord, "SELECT count(*) FROM moved_event") == [(40,)]
    # Written on the other node now, the moved rows' new events still sort after their old ones: replay holds.
    assert rows(
        coord,
        "SELECT pgh_obj_id, array_agg(pgh_operation ORDER BY pgh_id) FROM moved_event "
        "WHERE pgh_obj_id = ANY (%s) GROUP BY 1 ORDER BY 1",
        [moved_ids],
    ) == [(i, ["INSERT", "UPDATE"]) for i in moved_ids]
    assert rows(coord, "SELECT * FROM history_as_of(NULL::moved, now()) ORDER BY id") == [
        (i, "after", i) for i in range(1, 21)
    ]


def test_the_table_owner_cannot_drop_or_disable_a_shards_trigger_on_a_worker(coord, cluster):
    """The owner owns the shards too, and may connect to a worker, where
    history_track's catalog (the coordinator's) does not know them: the DDL
    event triggers there keep the shards' history triggers."""
    coord.execute("CREATE ROLE shard_owner LOGIN")  # Citus creates it on the workers
    distribute(coord, "owned")
    coord.execute("ALTER TABLE owned OWNER TO shard_owner")
    coord.execute("GRANT USAGE ON SCHEMA history_track TO shard_owner")
    coord.execute("SET ROLE shard_owner")
    coord.execute("SELECT track_table('owned')")
    # On the coordinator, as on a single node (and Citus sends nothing to the
    # shards); Citus itself refuses them unless the session turns on
    # citus.enable_unsafe_triggers, which anyone may.
    coord.execute("SET citus.enable_unsafe_triggers = on")
    for ddl, done in [
        ("ALTER TABLE owned DISABLE TRIGGER history_track_update", "disabled"),
        ("DROP TRIGGER history_track_update ON owned", "dropped"),
    ]:
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as refused:
            coord.execute(ddl)
        assert refused.value.diag.message_primary == f"the update history trigger of public.owned cannot be {done}"
    coord.execute("RESET ROLE")
    coord.execute("RESET citus.enable_unsafe_triggers")
    with psycopg.connect(cluster.workers[0].conninfo(user="shard_owner"), autocommit=True) as worker:
        worker.execute("SET citus.override_table_visibility = off")
        worker.execute("SET citus.enable_manual_changes_to_shards = on")
        (shard,) = worker.execute(
            "SELECT relname::text FROM pg_class WHERE relname ~ '^owned_[0-9]+$' LIMIT 1"
        ).fetchone()
        for ddl, done in [
            (f"ALTER TABLE {shard} DISABLE TRIGGER USER", "disabled"),
            (f"DROP TRIGGER history_track_update_{shard.rsplit('_', 1)[1]} ON {shard}", "dropped"),
        ]:
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as refused:
                worker.execute(ddl)
            assert refused.value.diag.message_primary.endswith(f"of a shard cannot be {done}")
        assert rows(
            worker,
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass AND tgenabled = 'O' "
            "AND tgname ~ '^history_track_'",
            [shard],
        ) == [(3,)]
    coord.execute("INSERT INTO owned SELECT g, 'x', g FROM generate_series(1, 8) AS g")
    assert rows(coord, "SELECT count(*) FROM owned_event") == [(8,)]
    # untrack_table() on the coordinator still removes them (Citus' own connections).
    coord.execute("SELECT untrack_table('owned')")
    assert (
        rows(
            coord,
            "SELECT result FROM run_command_on_shards('owned', $$SELECT count(*) FROM pg_trigger "
            "WHERE tgrelid = '%s'::regclass AND NOT tgisinternal$$)",
        )
        == [("0",)] * 4
    )
    # (Its shards stay the role's: a rebalance onto a new node, where the role
    # may not create in public, would fail on them.)
    coord.execute("DROP TABLE owned")


def test_history_as_of_replays_every_checkpoint_of_a_random_workload_exactly(coord, cluster):
    """tests/test_replay.py's property on a distributed table: a random
    workload (hypothesis) of multi-row and multi-shard statements, upserts,
    deletes and re-inserts of the same key, no-op updates, rolled-back
    transactions, NULLs, arrays and jsonb, some issued on a worker; a snapshot
    after every transaction equals history_as_of() at its moment, whole and
    by key. (A distribution column cannot change on Citus: no key moves.)"""
    coord.prepare_threshold = None  # see tests/test_replay.py

    @settings(
        max_examples=12,
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.data())
    def run(data: Any) -> None:
        coord.execute(
            "SELECT untrack_table(t, drop_events => true) FROM (SELECT to_regclass('t') AS t) s WHERE t IS NOT NULL"
        )
        coord.execute("DROP TABLE IF EXISTS t")
        coord.execute("CREATE TABLE t (id int PRIMARY KEY, v int, s text, a int[], j jsonb)")
        coord.execute("SELECT create_distributed_table('t', 'id', shard_count => 4)")
        coord.execute("SELECT track_table('t')")
        with psycopg.connect(cluster.workers[1].conninfo(), autocommit=True) as worker:
            checkpoints: list[tuple[Any, list[tuple[Any, ...]]]] = []
            for _ in range(data.draw(st.integers(4, 12))):
                conn = worker if data.draw(st.integers(0, 3)) == 0 else coord
                keys = [k for (k,) in rows(coord, "SELECT id FROM t ORDER BY id")]
                free = [k for k in range(1, 30) if k not in keys]
                kind = data.draw(st.sampled_from(["insert", "upsert", "update", "noop", "delete", "reinsert"]))
                some = data.draw(st.lists(st.sampled_from(keys or [1]), min_size=1, max_size=4, unique=True))
                rollback = data.draw(st.integers(0, 9)) == 0
                try:
                    with conn.transaction():
                        if kind in ("insert", "upsert") or not keys:
                            target = data.draw(
                                st.lists(
                                    st.sampled_from(free + (keys if kind == "upsert" else [])),
                                    min_size=1,
                                    max_size=4,
                                    unique=True,
                                )
                            )
                            params = [x for k in target for x in _row(k, data.draw(VALUES))]
                            conn.execute(
                                f"INSERT INTO t ({COLUMNS}) VALUES "
                                + ", ".join(["(%s, %s, %s, %s, %s)"] * len(target))
                                + " ON CONFLICT (id) DO UPDATE SET v = excluded.v, s = excluded.s,"
                                " a = excluded.a, j = excluded.j",
                                params,
                            )
                        elif kind == "update":
                            v, s, a, j = data.draw(VALUES)
                            conn.execute(
                                "UPDATE t SET v = %s, s = %s, a = %s, j = %s WHERE id = ANY(%s)",
                                [v, s, a, None if j is None else json.dumps(j), some],
                            )
                        elif kind == "noop":
                            conn.execute("UPDATE t SET v = v, j = j WHERE id = ANY(%s)", [some])
                        elif kind == "delete":
                            conn.execute("DELETE FROM t WHERE id = ANY(%s)", [some])
                        else:
                            conn.execute("DELETE FROM t WHERE id = %s", [some[0]])
                            conn.execute(
                                f"INSERT INTO t ({COLUMNS}) VALUES (%s, %s, %s, %s, %s)",
                                _row(some[0], data.draw(VALUES)),
                            )
                        if rollback:
                            conn.execute("DO $$ BEGIN RAISE EXCEPTION 'roll back'; END $$")
                except psycopg.errors.RaiseException:
                    assert rollback
                (at,) = coord.execute("SELECT clock_timestamp()").fetchone()
                checkpoints.append((at, rows(coord, f"SELECT {COLUMNS} FROM t ORDER BY id")))
                time.sleep(0.002)
        for at, snapshot in checkpoints:
            assert rows(coord, f"SELECT {COLUMNS} FROM history_as_of(NULL::t, %s) ORDER BY id", [at]) == snapshot
            for key_row in snapshot[:3]:
                assert rows(
                    coord, f"SELECT {COLUMNS} FROM history_as_of(NULL::t, %s, key => %s)", [at, str(key_row[0])]
                ) == [key_row]

    run()


def test_rebalancing_onto_a_new_node_keeps_every_event_colocated(coord, cluster):
    """(It adds a third worker to the module's cluster: the tests after it run on it too.)"""
    distribute(coord, "spread")
    coord.execute("SELECT track_table('spread')")
    coord.execute("INSERT INTO spread SELECT g, 'new', g FROM generate_series(1, 30) AS g")
    new = cluster.add_worker()
    (group,) = coord.execute("SELECT groupid FROM pg_dist_node WHERE nodename = %s AND nodeport = %s", [str(new.socket_dir), new.port]).fetchone()
    coord.execute("SELECT citus_rebalance_start(shard_transfer_mode => 'block_writes')")
    with coord.transaction():
        coord.execute("SET LOCAL statement_timeout = '180s'")  # a failing move is retried for ever
        coord.execute("SELECT citus_rebalance_wait()")
    table, history = placements(coord, "spread"), placements(coord, "spread_event")
    assert table == history and group in table.values()
    coord.execute("UPDATE spread SET status = 'after'")
    with psycopg.connect(new.conninfo(), autocommit=True) as conn:
        conn.execute("INSERT INTO spread VALUES (31, 'new node', 0)")
    assert rows(coord, "SELECT count(*), count(DISTINCT pgh_id) FROM spread_event") == [(61, 61)]
    assert rows(
        coord, "SELECT pgh_obj_id, array_agg(pgh_operation ORDER BY pgh_id) FROM spread_event GROUP BY 1 ORDER BY 1"
    ) == [(i, ["INSERT", "UPDATE"]) for i in range(1, 31)] + [(31, ["INSERT"])]
    assert rows(coord, "SELECT * FROM history_as_of(NULL::spread, now()) ORDER BY id") == rows(
        coord, "SELECT * FROM spread ORDER BY id"
    )


def test_a_labeled_conditional_tracker_records_on_every_shard(coord):
    distribute(coord, "labeled")
    coord.execute("SELECT track_table('labeled')")
    coord.execute(
        "SELECT track_table('labeled', label => 'paid', operations => '{update}', "
        "condition => $$OLD.status IS DISTINCT FROM NEW.status AND NEW.status = 'paid'$$)"
    )
    coord.execute("INSERT INTO labeled SELECT g, 'new', g FROM generate_series(1, 10) AS g")
    coord.execute("UPDATE labeled SET status = 'paid' WHERE id % 3 = 0")
    coord.execute("UPDATE labeled SET status = 'paid', amount = 0 WHERE id IN (3, 4)")
    assert rows(
        coord, "SELECT pgh_obj_id, amount FROM labeled_event WHERE pgh_label = 'paid' ORDER BY pgh_obj_id, pgh_id"
    ) == [(3, 3), (4, 0), (6, 6), (9, 9)]
    assert rows(
        coord, "SELECT label, condition FROM history_trackers WHERE table_name = 'labeled'::regclass AND label = 'paid'"
    ) == [("paid", "(((old).status IS DISTINCT FROM (new).status) AND ((new).status = 'paid'::text))")]
