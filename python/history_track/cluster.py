"""A temporary Citus cluster on this machine: a coordinator and workers, each a
:class:`~history_track.server.TemporaryServer` of a PostgreSQL installation
that has Citus (``tools/citus.py`` builds one), with history_track available.

Used by the Citus tests (tests/test_citus.py) and the Citus benchmark
(bench/citus.py)::

    with TemporaryCluster(pg_config, workers=2) as cluster:
        conn = psycopg.connect(cluster.coordinator.conninfo())

Every node preloads Citus; the coordinator is registered
(citus_set_coordinator_host, without shards) and the workers added
(citus_add_node), so Citus syncs its metadata to them: a write may be issued
on any node. ``database`` gets the citus extension on every node before the
nodes are joined.
"""

from __future__ import annotations

import os

import psycopg
from psycopg import sql

from .server import TemporaryServer


class TemporaryCluster:
    """A coordinator and ``workers`` workers, started and joined; :meth:`stop`
    (or leaving the ``with`` block) stops them all and removes their files."""

    # Citus connects to the nodes itself, through their Unix sockets (a node's
    # name is its socket directory: the servers listen on no TCP address): no
    # TLS between them (the servers run as the postgres OS user, who cannot
    # read root's ~/.postgresql), logical decoding for shard moves.
    POSTGRES_ARGS = (
        TemporaryServer.POSTGRES_ARGS
        + " -c shared_preload_libraries=citus -c citus.node_conninfo=sslmode=disable"
        + " -c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10"
        + " -c max_connections=100 -c fsync=off -c synchronous_commit=off"
    )

    def __init__(
        self,
        pg_config: str | os.PathLike[str],
        *,
        workers: int = 2,
        database: str = "test",
        postgres_args: str | None = None,
    ) -> None:
        self.database = database
        self.pg_config = pg_config
        self.postgres_args = postgres_args or self.POSTGRES_ARGS
        self.nodes: list[TemporaryServer] = []
        try:
            for _ in range(workers + 1):
                self._start_node()
            with psycopg.connect(self.coordinator.conninfo(), autocommit=True) as conn:
                conn.execute(
                    "SELECT citus_set_coordinator_host(%s, %s)",
                    [str(self.coordinator.socket_dir), self.coordinator.port],
                )
                for worker in self.workers:
                    conn.execute("SELECT citus_add_node(%s, %s)", [str(worker.socket_dir), worker.port])
        except BaseException:
            self.stop()
            raise

    def _start_node(self) -> TemporaryServer:
        server = TemporaryServer(self.pg_config, database=self.database, postgres_args=self.postgres_args)
        self.nodes.append(server)
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            # How the node reaches itself (citus.local_hostname, 'localhost' by default: TCP).
            conn.execute(sql.SQL("ALTER SYSTEM SET citus.local_hostname = {}").format(str(server.socket_dir)))
            conn.execute("SELECT pg_reload_conf()")
            conn.execute("CREATE EXTENSION citus")
        return server

    def add_worker(self) -> TemporaryServer:
        """Start one more worker and add it to the cluster (Citus creates the
        extensions and distributed objects there); it holds no shards until a
        rebalance moves some."""
        server = self._start_node()
        with psycopg.connect(self.coordinator.conninfo(), autocommit=True) as conn:
            conn.execute("SELECT citus_add_node(%s, %s)", [str(server.socket_dir), server.port])
        return server

    @property
    def coordinator(self) -> TemporaryServer:
        return self.nodes[0]

    @property
    def workers(self) -> list[TemporaryServer]:
        return self.nodes[1:]

    def stop(self) -> None:
        """Stop every node and remove its files."""
        for server in reversed(self.nodes):
            server.stop()

    def __enter__(self) -> TemporaryCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
