"""The temporary server (history_track.server.TemporaryServer), on its own:
start, restart, stop, a port taken meanwhile, and what it leaves behind."""

from __future__ import annotations

import os
import socket
import subprocess

import psycopg
import pytest
from history_track import server as server_module
from history_track.server import ServerError, TemporaryServer


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_start_restart_stop_leaves_nothing(pytestconfig):
    srv = TemporaryServer(pg_config=pytestconfig.getoption("--history-track-pg-config"), database="shop")
    try:
        pid = srv.child_process.pid
        assert srv.conninfo() == f"host={srv.socket_dir} port={srv.port} user=postgres dbname=shop"
        with psycopg.connect(srv.url(), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (id int)")
        # In its own session: a terminal's Ctrl-C (sent to the foreground
        # process group, e.g. psql under history-track sandbox) does not reach it.
        assert os.getsid(pid) == pid != os.getsid(0)
        srv.terminate()
        assert srv.child_process is None and not _alive(pid)
        srv.start()   # the same data, the same port
        with psycopg.connect(srv.conninfo(), autocommit=True) as conn:
            assert conn.execute("SELECT to_regclass('kept') IS NOT NULL").fetchone() == (True,)
        pid = srv.child_process.pid
    finally:
        srv.stop()
    assert not _alive(pid)
    assert not srv.base_dir.exists()


def test_only_its_own_os_user_can_connect(pytestconfig):
    """The temporary servers (the tests', the demo's, the sandbox's, a Citus
    cluster's) trust whoever connects, so only the OS user running them may:
    they listen on no TCP address, only on a Unix socket in a directory of mode
    0700, and reject TCP connections should a caller make them listen. (On
    127.0.0.1, any local user was their superuser: COPY ... FROM PROGRAM ran
    commands as the server's OS user.)"""
    pg_config = pytestconfig.getoption("--history-track-pg-config")
    with TemporaryServer(pg_config=pg_config) as srv:
        assert srv.conninfo().startswith(f"host={srv.socket_dir} ")
        assert os.stat(srv.socket_dir).st_mode & 0o777 == 0o700
        for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with pytest.raises(OSError), socket.socket(family) as sock:  # (no IPv6 on the host: refused too)
                sock.connect((address, srv.port))
        with psycopg.connect(srv.conninfo(), autocommit=True) as conn:
            assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
        if os.geteuid() == 0:  # another OS user (the server runs as postgres, the tests as root)
            proc = subprocess.run(
                ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
                 str(srv.installation.bindir / "psql"), "-X", "-h", str(srv.socket_dir), "-p", str(srv.port),
                 "-U", "postgres", "-d", "postgres", "-c", "SELECT 1"],
                capture_output=True, text=True, timeout=60, check=False)
            assert proc.returncode == 2 and "Permission denied" in proc.stderr, proc.stderr
        if srv.run_as is not None:  # root runs it as another OS user: who gets only its data and socket
            # directories, not the one where root opens the log by name (a link there would have root
            # write wherever it points)
            assert (srv.base_dir.stat().st_uid, srv.log_file.stat().st_uid) == (0, 0)
            plant = subprocess.run(srv.as_server_user(["ln", "-s", "/etc/planted", str(srv.base_dir / "planted")]),
                                   capture_output=True, text=True, check=False)
            assert plant.returncode != 0 and "Permission denied" in plant.stderr, plant.stderr
    with TemporaryServer(pg_config=pg_config,
                         postgres_args=TemporaryServer.POSTGRES_ARGS + " -c listen_addresses=127.0.0.1") as srv:
        with pytest.raises(psycopg.OperationalError, match="pg_hba.conf rejects connection"):
            psycopg.connect(f"host=127.0.0.1 port={srv.port} user=postgres dbname=postgres sslmode=disable")


def test_a_port_taken_meanwhile_is_replaced(pytestconfig, monkeypatch):
    """Between choosing a free port and the server binding it, someone else
    may take it (parallel test runs): the server starts on another. (Only a
    server asked to listen on TCP binds one.)"""
    tcp = TemporaryServer.POSTGRES_ARGS + " -c listen_addresses=127.0.0.1"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy])
        real = server_module._free_port
        monkeypatch.setattr(server_module, "_free_port", lambda: next(ports, None) or real())
        with TemporaryServer(pg_config=pytestconfig.getoption("--history-track-pg-config"), postgres_args=tcp) as srv:
            assert srv.port != busy
            psycopg.connect(srv.conninfo()).close()
        # A port the caller asked for is not silently replaced.
        with pytest.raises(ServerError, match="could not bind|could not create"):
            TemporaryServer(pg_config=pytestconfig.getoption("--history-track-pg-config"), port=busy, postgres_args=tcp)


def test_a_failed_start_says_why_and_cleans_up(pytestconfig, monkeypatch):
    made: list[str] = []
    mkdtemp = server_module.tempfile.mkdtemp

    def recorded(*args, **kwargs):
        made.append(mkdtemp(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(server_module.tempfile, "mkdtemp", recorded)
    with pytest.raises(ServerError, match='PostgreSQL did not start:(.|\n)*"no_such_setting"'):
        TemporaryServer(pg_config=pytestconfig.getoption("--history-track-pg-config"),
                        postgres_args="-h 127.0.0.1 -c no_such_setting=1")
    assert len(made) == 1 and not os.path.exists(made[0])
