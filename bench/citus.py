#!/usr/bin/env python3
"""history_track on Citus: bulk writes through the coordinator of a real cluster.

    python3 bench/citus.py [--rows 200000] [--rounds 3] [--pg-config PATH]

Starts a Citus cluster (a coordinator and 2 workers on this machine,
history_track.cluster.TemporaryCluster; Citus built by tools/citus.py unless
--pg-config or $HISTORY_TRACK_CITUS_PG_CONFIG names a PostgreSQL with Citus) and
times bulk INSERT ... SELECT and UPDATE of --rows rows, untracked and tracked, on
tables distributed by id (32 shards); then the same statements on one server of
the same PostgreSQL without Citus. Variants alternate within each round; the
report gives medians over rounds and tracked/untracked ratios. Compare ratios
from one run, not absolute numbers across runs (doc/scale-out.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))
os.environ.setdefault("HISTORY_TRACK_SOURCE", str(ROOT))

from history_track.cluster import TemporaryCluster  # noqa: E402
from history_track.server import TemporaryServer  # noqa: E402

SHAPE = "id int PRIMARY KEY, a int NOT NULL, b text, c numeric(12,2), d timestamptz"
INSERT_SELECT = (
    "SELECT g, g % 1000, md5(g::text), g / 7.0, timestamptz '2026-01-01' + g * interval '1 second'"
    " FROM generate_series(1, {n}) g"
)


def bulk(conn: psycopg.Connection[Any], n: int, rounds: int, distributed: bool) -> dict[tuple[str, str], float]:
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
            for op, stmt in (
                ("insert", f"INSERT INTO {table} {INSERT_SELECT.format(n=n)}"),
                ("update", f"UPDATE {table} SET a = a + 1"),
            ):
                started = time.perf_counter()
                conn.execute(stmt)
                times.setdefault((variant, op), []).append(time.perf_counter() - started)
            if variant == "tracked":
                recorded = conn.execute(f"SELECT count(*) FROM {table}_event").fetchone()
                assert recorded == (2 * n,), recorded
                conn.execute("SELECT untrack_table(%s, drop_events => true)", [table])
        print(f"  {'citus' if distributed else 'single node'} round {r + 1}/{rounds} done", file=sys.stderr)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--pg-config", default=None, help="pg_config of a PostgreSQL with Citus (default: tools/citus.py)"
    )
    args = parser.parse_args()
    pg_config = args.pg_config or os.environ.get("HISTORY_TRACK_CITUS_PG_CONFIG")
    if not pg_config:
        sys.path.insert(0, str(ROOT / "tools"))
        import citus  # tools/citus.py

        pg_config = citus.build()
    results = {}
    with (
        TemporaryCluster(pg_config, workers=2) as cluster,
        psycopg.connect(cluster.coordinator.conninfo(), autocommit=True) as conn,
    ):
        conn.execute("CREATE EXTENSION history_track")
        version = conn.execute("SELECT current_setting('server_version'), citus_version()").fetchone()
        assert version is not None
        results["citus"] = bulk(conn, args.rows, args.rounds, True)
    with TemporaryServer(pg_config) as server, psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION history_track")
        results["single node"] = bulk(conn, args.rows, args.rounds, False)
    print(f"PostgreSQL {version[0]}, {version[1].split(' on ')[0]}, {args.rows} rows, {args.rounds} rounds (medians)\n")
    print(f"{'cluster':<32}{'statement':<10}{'untracked':>11}{'tracked':>10}{'tracked/untracked':>19}")
    for name, label in (("citus", "Citus: coordinator + 2 workers"), ("single node", "one node, no Citus")):
        for op in ("insert", "update"):
            u, t = results[name][("untracked", op)], results[name][("tracked", op)]
            print(f"{label:<32}{op:<10}{u * 1000:>9.0f}ms{t * 1000:>8.0f}ms{t / u:>18.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
