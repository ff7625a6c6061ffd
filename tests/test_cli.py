"""The history-track command."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile
import time

import pytest

COMMANDS = [[], ["demo"], ["install"], ["version"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help(command):
    proc = subprocess.run([sys.executable, "-m", "history_track", *command, "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: history-track")


def test_version():
    proc = subprocess.run(["history-track", "version"], capture_output=True, text=True, check=True)
    import history_track
    assert proc.stdout.strip() == history_track.__version__


def test_demo_runs_quickly_and_leaves_nothing_behind():
    pattern = os.path.join(tempfile.gettempdir(), "history_track_*")
    before = set(glob.glob(pattern))
    started = time.monotonic()
    proc = subprocess.run(["history-track", "demo"], capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 15
    out = proc.stdout
    assert "SELECT track_table('orders');" in out
    timeline, _, as_of = out.partition("SELECT * FROM history_as_of(NULL::orders")
    lines = [line.split() for line in timeline.splitlines()]
    events = [l[:4] for l in lines if l and l[0].isdigit()]
    assert events == [
        ["1", "insert", "INSERT", "1"],
        ["2", "insert", "INSERT", "2"],
        ["3", "update", "UPDATE", "1"],
        ["4", "update", "UPDATE", "2"],
        ["5", "delete", "DELETE", "2"],
    ]
    assert '"user": "bob"' in out
    assert 'status: "new" -> "paid"' in timeline and "amount: 12.50 -> 10.00" in timeline
    # The table before bob paid and alice repriced: both orders, as they were.
    assert [l.split() for l in as_of.splitlines() if l[:1].isdigit()] == [
        ["1", "teapot", "25.00", "new"], ["2", "cups", "12.50", "new"]]
    assert set(glob.glob(pattern)) == before


def test_install_into_an_unwritable_installation_says_what_to_do(tmp_path):
    """A share/extension directory we cannot write: one clear line, a hint, exit 1."""
    fake = tmp_path / "pg_config"
    missing = tmp_path / "no" / "such" / "share"
    fake.write_text(
        "#!/bin/sh\n"
        f"for a in \"$@\"; do case $a in --bindir) echo {tmp_path}/bin;; --sharedir) echo {missing};;"
        f" --pkglibdir) echo {tmp_path}/lib;; --version) echo 'PostgreSQL 15.0';; esac; done\n"
    )
    fake.chmod(0o755)
    proc = subprocess.run(["history-track", "install", "--pg-config", str(fake)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"history-track: error: cannot write to {missing / 'extension'}",
        "hint: run the command with sudo, or as the owner of the PostgreSQL installation",
    ]
