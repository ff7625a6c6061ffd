"""PGXN: `make dist` builds the distribution from git; pgxnclient installs that
zip into a PostgreSQL installation (`pgxn install`) and creates the extension
in a database of it (`pgxn load`); then a table is tracked."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from history_track.server import Installation, TemporaryServer, build_overlay

ROOT = Path(__file__).resolve().parent.parent


def _version() -> str:
    out = subprocess.run(["make", "-s", "version"], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A scratch directory the server's OS user can read (pytest's own is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="history_track_pgxn_"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_make_dist_then_pgxn_install_and_load(request, tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.fail("make dist builds the distribution from git: run the suite in a git checkout")
    pg_config = request.config.getoption("--history-track-pg-config") or os.environ.get("PG_CONFIG") or "pg_config"
    version = _version()
    zip_name = f"history_track-{version}.zip"
    subprocess.run(["make", "-s", "dist", f"PG_CONFIG={pg_config}"], cwd=ROOT, check=True)
    dist = tmp_path / zip_name
    shutil.move(ROOT / zip_name, dist)

    # What is in it: the tracked files of HEAD, under history_track-<version>/.
    tracked = subprocess.run(["git", "ls-tree", "-r", "--name-only", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    names = zipfile.ZipFile(dist).namelist()
    assert {f"history_track-{version}/{t}" for t in tracked} <= set(names)
    for required in ["META.json", "Makefile", "history_track.control", "src/50_api.sql", "doc/reference.md"]:
        assert f"history_track-{version}/{required}" in names

    # A PostgreSQL installation of our own to install into: the real one's files,
    # without history_track, and a pg_config that reports its share directory.
    inst = Installation.find(pg_config)
    target = build_overlay(inst, tmp_path / "pg", with_extension=False)
    for link in (target.sharedir / "extension").glob("history_track*"):
        link.unlink()   # (links to a copy installed on this machine by hand)
    wrapper = tmp_path / "pg_config"
    wrapper.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do\n'
        f'  if [ "$a" = --sharedir ]; then echo {target.sharedir}; else {shutil.which(inst.pg_config) or inst.pg_config} "$a"; fi\n'
        "done\n")
    wrapper.chmod(0o755)
    assert not list((target.sharedir / "extension").glob("history_track*"))

    env = dict(os.environ)
    proc = subprocess.run(["pgxn", "install", "--yes", "--unstable", "--make", "make", "--nosudo",
                           "--pg_config", str(wrapper), str(dist)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = sorted(p.name for p in (target.sharedir / "extension").glob("history_track*"))
    assert f"history_track--{version}.sql" in installed and "history_track.control" in installed

    with TemporaryServer(installation=target) as server:
        with psycopg.connect(server.conninfo("postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE pgxn_load")
        proc = subprocess.run(["pgxn", "load", "--verbose", "--unstable", "--pg_config", str(wrapper), "--yes",
                               "-d", server.conninfo("pgxn_load"), str(dist)],
                              capture_output=True, text=True, env={**env, **server.environ()}, cwd=tmp_path,
                              stdin=subprocess.DEVNULL, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        with psycopg.connect(server.conninfo("pgxn_load"), autocommit=True) as conn:
            assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'history_track'").fetchone() \
                == (version,), proc.stdout + proc.stderr
            conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
            conn.execute("SELECT track_table('orders')")
            conn.execute("INSERT INTO orders VALUES (1, 'new')")
            assert conn.execute("SELECT pgh_operation, id, status FROM orders_event").fetchall() == [
                ("INSERT", 1, "new")]
