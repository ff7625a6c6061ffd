"""The temporary-server harness, as root and as an unprivileged user.

When the suite runs as root (CI), every other test already proves the root
path (the server runs as the postgres OS user). This test proves the other
one: it runs the harness in a separate Python process as an unprivileged user
(postgres, when we are root; ourselves otherwise).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from conftest import ROOT

SCRIPT = """
import os, psycopg
from history_track.server import TemporaryServer
from history_track.install import create_extension
assert os.geteuid() != 0
with TemporaryServer() as server:
    assert server.run_as is None
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        create_extension(conn)
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        conn.execute("SELECT track_table('t')")
        conn.execute("INSERT INTO t VALUES (1)")
        print(conn.execute("SELECT pgh_operation, id FROM t_event").fetchall())
    base = server.base_dir
print(os.path.exists(base))
"""

# Our runtime dependencies, by name prefix (psycopg, psycopg_binary and theirs).
PREFIXES = ("psycopg", "typing_extensions")


@pytest.fixture
def unprivileged_python() -> Iterator[list[str]]:
    """A command that runs Python as an unprivileged user with our dependencies importable."""
    if os.geteuid() != 0:
        yield [sys.executable]
        return
    site = Path(__import__("psycopg").__file__).resolve().parent.parent
    libs = Path(tempfile.mkdtemp(prefix="ht_libs_"))
    for src in site.iterdir():
        if src.name.lower().startswith(PREFIXES):
            if src.is_dir():
                shutil.copytree(src, libs / src.name)
            else:
                shutil.copy2(src, libs / src.name)
    os.chmod(libs, 0o755)
    for path in libs.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    python = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    if not os.path.exists(python):
        pytest.fail(f"{python} is needed to run the harness as an unprivileged user")
    yield ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--",
           "env", f"PYTHONPATH={libs}:{ROOT / 'python'}", f"HISTORY_TRACK_SOURCE={ROOT}", "HOME=/tmp", python]
    shutil.rmtree(libs, ignore_errors=True)


def test_harness_runs_as_an_unprivileged_user(unprivileged_python):
    proc = subprocess.run([*unprivileged_python, "-c", SCRIPT], capture_output=True, text=True, timeout=120,
                          cwd="/tmp")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[('INSERT', 1)]", "False"]
