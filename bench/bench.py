#!/usr/bin/env python3
"""history_track's write-path benchmark.

    python3 bench/bench.py [--rows 200000] [--rounds 3] [--seconds 10] [--pg-config PATH]
    python3 bench/bench.py --reading [--reading-events 1000000,10000000]
    python3 bench/bench.py --index-costs [--rows 200000] [--rounds 5]
    python3 bench/bench.py --citus [--rows 200000] [--rounds 3] [--citus-pg-config PATH]

Starts one temporary PostgreSQL server and, in one process run, measures:

* bulk INSERT, UPDATE (every row) and DELETE of --rows rows, one statement each,
  on four tables of the same shape:
    untracked  no history
    tracked    track_table() defaults
    floor      the same statements writing the same event rows by hand, in one
               statement (a CTE with RETURNING into an event table of our shape)
    naive      one generic row trigger writing to_jsonb(NEW/OLD) into one log table
  and the tracked statements again with a context set;
* single-row OLTP updates with pgbench (1 and 4 clients), untracked, tracked,
  the single-row floor (a hand-written row trigger inserting the same event row)
  and tracked with a context set;
* with --index-costs: what each index of the event table costs the tracked bulk
  insert and update (the same statements on tracked tables whose event table
  lacks one index each);
* with --citus: bulk INSERT and UPDATE of --rows rows through the coordinator
  of a Citus cluster (a coordinator and 2 workers on this machine,
  history_track.cluster.TemporaryCluster; Citus built by tools/citus.py),
  untracked and tracked tables distributed by id (32 shards), beside the same
  statements on one server of the same PostgreSQL without Citus;
* with --reading: reading one row's history (history_events(tbl, key => ...),
  with diffs) and one row's replay (history_as_of(..., key => ...)) from event
  tables of 1M and 10M events (--reading-events), median and 95th percentile
  of --lookups random rows.

Variants alternate within each round (the order rotates between rounds) and the
report gives medians over rounds, as ratios. Timings on a shared machine are
noisy: compare ratios from one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
os.environ.setdefault("HISTORY_TRACK_SOURCE", str(Path(__file__).resolve().parent.parent))

from history_track.cluster import TemporaryCluster
from history_track.server import TemporaryServer

SHAPE = "id int PRIMARY KEY, a int NOT NULL, b text, c numeric(12,2), d timestamptz"
COLS = "id, a, b, c, d"
INSERT_SELECT = (
    "SELECT g, g % 1000, md5(g::text), g / 7.0, timestamptz '2026-01-01' + g * interval '1 second'"
    " FROM generate_series(1, {n}) g"
)

PGH = "pgh_created_at, pgh_label, pgh_operation, pgh_obj_id, pgh_context_id, pgh_context"

SETUP = f"""
CREATE EXTENSION history_track;
CREATE TABLE t_untracked ({SHAPE});
CREATE TABLE t_tracked ({SHAPE});
CREATE TABLE t_context ({SHAPE});
CREATE TABLE t_floor ({SHAPE});
CREATE TABLE t_naive ({SHAPE});
SELECT track_table('t_tracked');
SELECT track_table('t_context');
-- The floor's event table: the same shape and indexes as an event table.
CREATE TABLE t_floor_event (LIKE t_tracked_event INCLUDING ALL);
-- The naive audit trigger: one generic row trigger, one JSONB log table.
CREATE TABLE audit_log (id bigserial PRIMARY KEY, table_name text NOT NULL, op text NOT NULL,
                        at timestamptz NOT NULL DEFAULT now(), row_data jsonb);
CREATE FUNCTION naive_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_log (table_name, op, row_data)
    VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END));
    RETURN NULL;
END $$;
CREATE TRIGGER naive_audit AFTER INSERT OR UPDATE OR DELETE ON t_naive
    FOR EACH ROW EXECUTE FUNCTION naive_audit();
-- The single-row floor (pgbench): the cheapest hand-written way to write the
-- same event row for a one-row update, a row trigger with one INSERT.
CREATE TABLE t_rowfloor ({SHAPE});
CREATE TABLE t_rowfloor_event (LIKE t_tracked_event INCLUDING ALL);
CREATE FUNCTION rowfloor() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO t_rowfloor_event ({PGH}, {COLS})
    VALUES (now(), 'update', 'UPDATE', NEW.id, NULL, NULL, NEW.id, NEW.a, NEW.b, NEW.c, NEW.d);
    RETURN NULL;
END $$;
CREATE TRIGGER rowfloor AFTER UPDATE ON t_rowfloor FOR EACH ROW EXECUTE FUNCTION rowfloor();
"""


def statements(variant: str, n: int) -> dict[str, str]:
    table = f"t_{variant}"
    if variant == "floor":
        return {
            "insert": f"WITH w AS (INSERT INTO t_floor {INSERT_SELECT.format(n=n)} RETURNING *)"
            f" INSERT INTO t_floor_event ({PGH}, {COLS})"
            f" SELECT now(), 'insert', 'INSERT', id, NULL, NULL, {COLS} FROM w",
            "update": f"WITH w AS (UPDATE t_floor SET a = a + 1 RETURNING *)"
            f" INSERT INTO t_floor_event ({PGH}, {COLS})"
            f" SELECT now(), 'update', 'UPDATE', id, NULL, NULL, {COLS} FROM w",
            "delete": f"WITH w AS (DELETE FROM t_floor RETURNING *)"
            f" INSERT INTO t_floor_event ({PGH}, {COLS})"
            f" SELECT now(), 'delete', 'DELETE', id, NULL, NULL, {COLS} FROM w",
        }
    return {
        "insert": f"INSERT INTO {table} {INSERT_SELECT.format(n=n)}",
        "update": f"UPDATE {table} SET a = a + 1",
        "delete": f"DELETE FROM {table}",
    }


BULK_TABLES = (
    "t_untracked, t_tracked, t_context, t_floor, t_naive, audit_log, t_tracked_event, t_context_event, t_floor_event"
)


def reset(conn: psycopg.Connection[Any], tables: str = BULK_TABLES) -> None:
    # Event tables are append-only; the benchmark, as superuser, opens the guard
    # the way prune_history() does, to start each round from empty tables.
    with conn.transaction():
        conn.execute("SET LOCAL history_track.pruning = 'on'")
        conn.execute(f"TRUNCATE {tables}")
    conn.execute("VACUUM ANALYZE")
    conn.execute("CHECKPOINT")


def bulk(conn: psycopg.Connection[Any], n: int, rounds: int, variants: list[str]) -> dict[tuple[str, str], list[float]]:
    times: dict[tuple[str, str], list[float]] = {}
    for r in range(rounds):
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        reset(conn)
        for variant in order:
            for op, stmt in statements(variant, n).items():
                with conn.transaction():
                    if variant == "context":
                        conn.execute('SELECT set_history_context(\'{"user": "bench", "request": "POST /x"}\')')
                    started = time.perf_counter()
                    conn.execute(stmt)
                    elapsed = time.perf_counter() - started
                times.setdefault((variant, op), []).append(elapsed)
        print(f"  bulk round {r + 1}/{rounds} done", file=sys.stderr)
    # Sanity: every tracked variant recorded every row of the last round.
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM t_tracked_event),"
        " (SELECT count(*) FROM t_context_event WHERE pgh_context IS NOT NULL)"
    ).fetchone()
    assert counts == (3 * n, 3 * n), counts
    return times


def pgbench(server: TemporaryServer, table: str, clients: int, seconds: int, setting: str) -> float:
    """TPS of single-row updates. Every variant runs the same transaction shape
    (BEGIN; set_config(...); UPDATE; COMMIT) so that only the setting differs:
    history_track.context for the context variant, an unrelated one otherwise."""
    script = (
        "\\set id random(1, 100000)\n"
        "BEGIN;\n"
        f'SELECT set_config(\'{setting}\', \'{{"user": "bench", "request": "POST /x"}}\', true);\n'
        f"UPDATE {table} SET a = a + 1 WHERE id = :id;\n"
        "COMMIT;\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        out = subprocess.run(
            [
                str(server.installation.bindir / "pgbench"),
                "-n",
                "-M",
                "prepared",
                "-c",
                str(clients),
                "-j",
                str(clients),
                "-T",
                str(seconds),
                "-f",
                path,
                "-h",
                "127.0.0.1",
                "-p",
                str(server.port),
                "-U",
                "postgres",
                "bench",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        os.unlink(path)
    for line in out.splitlines():
        if line.startswith("tps ="):
            return float(line.split()[2])
    raise RuntimeError(out)


def oltp(
    server: TemporaryServer, conn: psycopg.Connection[Any], rounds: int, seconds: int, names: list[str]
) -> dict[tuple[str, int], list[float]]:
    for table in ("t_untracked", "t_tracked", "t_rowfloor"):
        conn.execute(f"TRUNCATE {table}")
        conn.execute(f"INSERT INTO {table} {INSERT_SELECT.format(n=100000)}")
    conn.execute("VACUUM ANALYZE")
    variants = [
        ("untracked", "t_untracked", "bench.unrelated"),
        ("tracked", "t_tracked", "bench.unrelated"),
        ("floor", "t_rowfloor", "bench.unrelated"),
        ("context", "t_tracked", "history_track.context"),
    ]
    variants = [v for v in variants if v[0] in names]
    tps: dict[tuple[str, int], list[float]] = {}
    for r in range(rounds):
        for clients in (1, 4):
            order = variants[r % len(variants) :] + variants[: r % len(variants)]
            for name, table, setting in order:
                tps.setdefault((name, clients), []).append(pgbench(server, table, clients, seconds, setting))
        print(f"  oltp round {r + 1}/{rounds} done", file=sys.stderr)
    return tps


# The event table's indexes, by what they serve (doc/performance.md), and how
# to find each on a given event table.
INDEXES = {
    "pgh_id primary key (events by id: revert_row(tbl, event), order)": "indisprimary",
    "(pgh_obj_id, pgh_id) (one row's history, replay of one row)": (
        "pg_get_indexdef(indexrelid) LIKE '%(pgh_obj_id, pgh_id)'"
    ),
    "(pgh_old_obj_id, pgh_id) partial (history across key changes)": (
        "pg_get_indexdef(indexrelid) LIKE '%(pgh_old_obj_id, pgh_id)%'"
    ),
    "BRIN (pgh_created_at) (time ranges, contexts)": "pg_get_indexdef(indexrelid) LIKE '%USING brin%'",
}


def index_costs(conn: psycopg.Connection[Any], n: int, rounds: int) -> dict[tuple[str, str], list[float]]:
    """Tracked bulk insert and update with every index, and with each one
    dropped from a copy's event table (as superuser, on benchmark tables)."""
    variants = {"all indexes": "ic_all"}
    for i, name in enumerate(INDEXES):
        variants[f"without {name}"] = f"ic_{i}"
    for table in variants.values():
        conn.execute(f"CREATE TABLE {table} ({SHAPE})")
        conn.execute(f"SELECT track_table('{table}')")
    for i, where in enumerate(INDEXES.values()):
        index = conn.execute(
            f"SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'ic_{i}_event'::regclass AND {where}"
        ).fetchone()[0]
        if where == "indisprimary":
            conn.execute(f"ALTER TABLE ic_{i}_event DROP CONSTRAINT {index}")
        else:
            conn.execute(f"DROP INDEX {index}")
    times: dict[tuple[str, str], list[float]] = {}
    names = list(variants)
    for r in range(rounds):
        reset(conn, ", ".join(f"{t}, {t}_event" for t in variants.values()))
        for name in names[r % len(names) :] + names[: r % len(names)]:
            table = variants[name]
            for op, stmt in (
                ("insert", f"INSERT INTO {table} {INSERT_SELECT.format(n=n)}"),
                ("update", f"UPDATE {table} SET a = a + 1"),
            ):
                started = time.perf_counter()
                conn.execute(stmt)
                times.setdefault((name, op), []).append(time.perf_counter() - started)
        print(f"  index-costs round {r + 1}/{rounds} done", file=sys.stderr)
    return times


def reading(conn: psycopg.Connection[Any], events: int, lookups: int) -> dict[str, list[float]]:
    """Build a tracked table with `events` events (rows inserted, then every
    row updated nine times) and time single-row reads on it."""
    import random

    table = f"r_{events}"
    n = max(events // 10, 1)
    conn.execute(f"CREATE TABLE {table} ({SHAPE})")
    conn.execute(f"SELECT track_table('{table}')")
    started = time.perf_counter()
    conn.execute(f"INSERT INTO {table} ({COLS}) " + INSERT_SELECT.format(n=n))
    for _ in range(9):
        conn.execute(f"UPDATE {table} SET a = a + 1")
    conn.execute(f"VACUUM ANALYZE {table}_event")
    count = conn.execute(f"SELECT count(*) FROM {table}_event").fetchone()[0]
    print(f"  {table}: {count} events written in {time.perf_counter() - started:.0f}s", flush=True)
    rng = random.Random(events)
    out: dict[str, list[float]] = {"history_events": [], "history_as_of": []}
    queries = {
        "history_events": f"SELECT count(*) FROM history_events('{table}', key => %s)",
        "history_as_of": f"SELECT count(*) FROM history_as_of(NULL::{table}, now(), key => %s)",
    }
    for i in range(lookups + 5):
        key = str(rng.randint(1, n))
        for name, query in queries.items():
            t0 = time.perf_counter()
            got = conn.execute(query, [key]).fetchone()[0]
            elapsed = time.perf_counter() - t0
            assert got == (10 if name == "history_events" else 1), (name, key, got)
            if i >= 5:  # the first calls of a session also plan and cache
                out[name].append(elapsed)
    conn.execute(f"SELECT untrack_table('{table}', drop_events => true)")
    conn.execute(f"DROP TABLE {table}")
    return out


def citus_bulk(conn: psycopg.Connection[Any], n: int, rounds: int, distributed: bool) -> dict[tuple[str, str], float]:
    """Medians of bulk INSERT and UPDATE of n rows, untracked and tracked, on
    tables distributed by id (distributed) or plain; each round on new tables
    (a tracked distributed table refuses TRUNCATE)."""
    times: dict[tuple[str, str], list[float]] = {}
    for r in range(rounds):
        order = ["untracked", "tracked"] if r % 2 == 0 else ["tracked", "untracked"]
        for variant in order:
            table = f"c_{variant}"
            conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_event")
            conn.execute(f"CREATE TABLE {table} ({SHAPE})")
            if distributed:
                conn.execute("SELECT create_distributed_table(%s, 'id', shard_count => 32)", [table])
            if variant == "tracked":
                conn.execute("SELECT track_table(%s)", [table])
            conn.execute("VACUUM ANALYZE")
            for op, stmt in statements(variant, n).items():
                if op == "delete":
                    continue
                started = time.perf_counter()
                conn.execute(stmt.replace(f"t_{variant}", table))
                times.setdefault((variant, op), []).append(time.perf_counter() - started)
            if variant == "tracked":
                recorded = conn.execute(f"SELECT count(*) FROM {table}_event").fetchone()
                assert recorded == (2 * n,), recorded
                conn.execute("SELECT untrack_table(%s, drop_events => true)", [table])
        print(f"  {'citus' if distributed else 'single node'} round {r + 1}/{rounds} done", file=sys.stderr)
    return {k: statistics.median(v) for k, v in times.items()}


def citus_main(args: argparse.Namespace) -> int:
    """--citus: tracked/untracked on a 3-node Citus cluster beside one node."""
    pg_config = args.citus_pg_config or os.environ.get("HISTORY_TRACK_CITUS_PG_CONFIG")
    if not pg_config:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
        import citus  # tools/citus.py

        pg_config = citus.build()
    results = {}
    with (
        TemporaryCluster(pg_config, workers=2) as cluster,
        psycopg.connect(cluster.coordinator.conninfo(), autocommit=True) as conn,
    ):
        conn.execute("CREATE EXTENSION history_track")
        version = conn.execute("SELECT current_setting('server_version'), citus_version()").fetchone()
        results["citus"] = citus_bulk(conn, args.rows, args.rounds, True)
    with TemporaryServer(pg_config) as server, psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION history_track")
        results["single node"] = citus_bulk(conn, args.rows, args.rounds, False)
    print(f"PostgreSQL {version[0]}, {version[1].split(' on ')[0]}, {args.rows} rows, {args.rounds} rounds (medians)\n")
    print(f"{'cluster':<32}{'statement':<10}{'untracked':>11}{'tracked':>10}{'tracked/untracked':>19}")
    for name, label in (("citus", "Citus: coordinator + 2 workers"), ("single node", "one node, no Citus")):
        for op in ("insert", "update"):
            u, t = results[name][("untracked", op)], results[name][("tracked", op)]
            print(f"{label:<32}{op:<10}{u * 1000:>9.0f}ms{t * 1000:>8.0f}ms{t / u:>18.2f}x")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each pgbench run")
    parser.add_argument("--pg-config", default=None)
    parser.add_argument("--skip-oltp", action="store_true")
    parser.add_argument(
        "--context-only",
        action="store_true",
        help="only tracked vs tracked-with-context, for a sharper context ratio (use more rounds)",
    )
    parser.add_argument(
        "--reading",
        action="store_true",
        help="only the reading benchmark: one row's history and replay at 1M and 10M events",
    )
    parser.add_argument("--reading-events", default="1000000,10000000")
    parser.add_argument(
        "--index-costs",
        action="store_true",
        help="what each event-table index costs the tracked bulk insert and update",
    )
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument(
        "--citus",
        action="store_true",
        help="only bulk INSERT/UPDATE on a Citus cluster (coordinator + 2 workers) beside one node",
    )
    parser.add_argument(
        "--citus-pg-config", default=None, help="pg_config of a PostgreSQL with Citus (default: tools/citus.py)"
    )
    args = parser.parse_args()
    if args.citus:
        return citus_main(args)

    with TemporaryServer(
        pg_config=args.pg_config,
        postgres_args="-h 127.0.0.1 -F -c logging_collector=off -c max_connections=50"
        " -c shared_buffers=512MB -c max_wal_size=4GB -c lc_messages=C",
    ) as server:
        with psycopg.connect(server.conninfo("postgres"), autocommit=True) as c:
            c.execute("CREATE DATABASE bench")
        with psycopg.connect(server.conninfo("bench"), autocommit=True) as conn:
            conn.execute(SETUP)
            version = conn.execute("SHOW server_version").fetchone()[0]
            print(f"PostgreSQL {version}, {args.rows} rows, {args.rounds} rounds (medians)\n")
            if args.reading:
                print(f"{'events':>10}{'read':>16}{'median':>10}{'p95':>10}")
                for events in (int(e) for e in args.reading_events.split(",")):
                    for name, times in reading(conn, events, args.lookups).items():
                        times.sort()
                        print(
                            f"{events:>10}{name:>16}{statistics.median(times) * 1000:>8.2f}ms"
                            f"{times[int(len(times) * 0.95)] * 1000:>8.2f}ms",
                            flush=True,
                        )
                return 0
            if args.index_costs:
                times = index_costs(conn, args.rows, args.rounds)
                med = {k: statistics.median(v) for k, v in times.items()}
                print(f"{'event table':<72}{'insert':>9}{'update':>9}{'index share (ins/upd)':>24}")
                base = {op: med[("all indexes", op)] for op in ("insert", "update")}
                for name in dict.fromkeys(k[0] for k in med):
                    i, u = med[(name, "insert")], med[(name, "update")]
                    share = (
                        ""
                        if name == "all indexes"
                        else f"{(base['insert'] - i) / base['insert'] * 100:>10.1f}%"
                        f"{(base['update'] - u) / base['update'] * 100:>10.1f}%"
                    )
                    print(f"{name:<72}{i * 1000:>7.0f}ms{u * 1000:>7.0f}ms{share:>24}")
                return 0
            if args.context_only:
                times = bulk(conn, args.rows, args.rounds, ["tracked", "context"])
                med = {k: statistics.median(v) for k, v in times.items()}
                print(f"{'statement':<10}{'tracked':>10}{'context':>10}{'context/tracked':>17}")
                for op in ("insert", "update", "delete"):
                    t, c = med[("tracked", op)], med[("context", op)]
                    print(f"{op:<10}{t * 1000:>8.0f}ms{c * 1000:>8.0f}ms{c / t:>16.2f}x")
                if not args.skip_oltp:
                    tps = oltp(server, conn, args.rounds, args.seconds, ["tracked", "context"])
                    mt = {k: statistics.median(v) for k, v in tps.items()}
                    print(f"\n{'pgbench':<12}{'tracked':>12}{'context':>12}{'context/tracked':>17}")
                    for clients in (1, 4):
                        t, c = mt[("tracked", clients)], mt[("context", clients)]
                        print(
                            f"{clients} client{'s' if clients > 1 else ' '}   {t:>9.0f}tps{c:>9.0f}tps{c / t:>16.2f}x"
                        )
                return 0
            times = bulk(conn, args.rows, args.rounds, ["untracked", "tracked", "floor", "naive", "context"])
            med = {k: statistics.median(v) for k, v in times.items()}
            print(
                f"{'statement':<10}{'untracked':>11}{'tracked':>10}{'floor':>10}{'naive':>10}"
                f"{'tracked/untracked':>19}{'tracked/floor':>15}{'naive/untracked':>17}{'context/tracked':>17}"
            )
            for op in ("insert", "update", "delete"):
                u, t, f, n, c = (med[(v, op)] for v in ("untracked", "tracked", "floor", "naive", "context"))
                print(
                    f"{op:<10}{u * 1000:>9.0f}ms{t * 1000:>8.0f}ms{f * 1000:>8.0f}ms{n * 1000:>8.0f}ms"
                    f"{t / u:>18.2f}x{t / f:>14.2f}x{n / u:>16.2f}x{c / t:>16.2f}x"
                )
            if not args.skip_oltp:
                tps = oltp(server, conn, args.rounds, args.seconds, ["untracked", "tracked", "floor", "context"])
                mt = {k: statistics.median(v) for k, v in tps.items()}
                print(
                    f"\n{'pgbench':<12}{'untracked':>12}{'tracked':>12}{'floor':>12}{'context':>12}"
                    f"{'tracked/untracked':>19}{'floor/untracked':>17}{'tracked/floor':>15}{'context/tracked':>17}"
                )
                for clients in (1, 4):
                    u, t, f, c = (mt[(v, clients)] for v in ("untracked", "tracked", "floor", "context"))
                    print(
                        f"{clients} client{'s' if clients > 1 else ' '}   {u:>10.0f}tps{t:>9.0f}tps{f:>9.0f}tps"
                        f"{c:>9.0f}tps{t / u:>18.2f}x{f / u:>16.2f}x{t / f:>14.2f}x{c / t:>16.2f}x"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
