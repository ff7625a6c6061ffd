"""PgBouncer in front of a TemporaryServer, for the tests that need a real
transaction pooler (tests/test_django.py, tests/test_citus.py).

The tests that use it skip where pgbouncer is not installed, with how to get it
(CI installs it: .ci/run), and fail instead under CI=true.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest


def binary() -> str:
    """The pgbouncer executable, or a skip (a failure under CI)."""
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the pooler tests, and pgbouncer is not installed (apt-get install pgbouncer)")
        pytest.skip("pgbouncer is not installed (CI installs it: apt-get install pgbouncer)")
    return found


@contextmanager
def pgbouncer(server: Any, dbname: str, pool_size: int = 1) -> Iterator[int]:
    """PgBouncer in transaction mode with ``pool_size`` server connections to
    ``server`` (a TemporaryServer), run as the server's OS user; yields its
    port. Like the server, it trusts whoever connects, so it listens only on a
    Unix socket in the server's socket directory (mode 0700): connect with the
    server's host and this port. With one server connection every client's transactions take turns
    on the same server session, so anything set for the session would reach
    the next client."""
    executable = binary()
    port = server.port + 1 if server.port < 65535 else server.port - 1  # a socket of its own in that directory
    base = Path(server.base_dir) / f"pgbouncer_{port}"  # readable by the server's OS user
    base.mkdir(mode=0o755, exist_ok=True)
    (base / "userlist.txt").write_text('"postgres" ""\n')
    (base / "pgbouncer.ini").write_text(f"""[databases]
* = host={server.socket_dir} port={server.port}
[pgbouncer]
listen_addr =
listen_port = {port}
unix_socket_dir = {server.socket_dir}
auth_type = trust
auth_file = {base}/userlist.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 50
ignore_startup_parameters = extra_float_digits,options
logfile = {base}/pgbouncer.log
""")
    for f in base.iterdir():
        f.chmod(0o644)
    if server.run_as is not None:  # its log goes there
        import pwd

        entry = pwd.getpwnam(server.run_as)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    proc = subprocess.Popen(
        server.as_server_user([executable, str(base / "pgbouncer.ini")]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(100):
            try:
                psycopg.connect(
                    f"host={server.socket_dir} port={port} user=postgres dbname={dbname}", connect_timeout=1
                ).close()
                break
            except psycopg.OperationalError:
                time.sleep(0.05)
        else:
            proc.terminate()
            raise RuntimeError(f"pgbouncer did not start: {proc.communicate(timeout=10)[1]}")
        # Like the server, it trusts whoever connects: nothing of it listens on TCP.
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, "pgbouncer listens on TCP"
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
