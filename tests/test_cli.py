"""The history-track command."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

COMMANDS = [[], ["demo"], ["install"], ["log"], ["track"], ["uninstall"], ["untrack"], ["version"]]


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
    events = [line.split()[:1] + line.split()[3:5] for line in timeline.splitlines() if line.startswith("#")]
    assert events == [["#1", "INSERT", "1"], ["#2", "INSERT", "2"], ["#3", "UPDATE", "1"],
                      ["#4", "UPDATE", "2"], ["#5", "DELETE", "2"]]
    assert '"user": "bob"' in out
    assert '    status: "new" -> "paid"' in timeline and "    amount: 12.50 -> 10.00" in timeline
    assert "\033[" not in out   # piped: no colour
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


def _cli(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["history-track", *args, "--dsn", dsn], capture_output=True, text=True, timeout=60)


def test_track_log_untrack_against_a_database(history_track_conn, history_track_dsn):
    conn = history_track_conn
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text, total numeric)")
    proc = _cli("track", "orders", dsn=history_track_dsn)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "history of orders goes to orders_event"
    proc = _cli("track", "orders", "--label", "paid", "--operations", "update", "--condition", "NEW.status = 'paid'",
                dsn=history_track_dsn)
    assert "paid         update                 NEW.status = 'paid'" in proc.stdout
    with conn.transaction():
        conn.execute("SELECT set_history_context('{\"user\": \"ann\"}')")
        conn.execute("INSERT INTO orders VALUES (1, 'new', 10), (2, 'new', 5)")
    conn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
    conn.execute("UPDATE orders SET id = 3 WHERE id = 2")

    # One row's timeline, following its key change; plain when piped.
    proc = _cli("log", "orders", "3", dsn=history_track_dsn)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [l.split()[3:5] for l in lines if l.startswith("#")] == [["INSERT", "2"], ["UPDATE", "3"]]
    assert '{"user": "ann"}' in lines[0]
    assert "    id: 2 -> 3" in lines and "\033[" not in proc.stdout
    # Colour on request.
    assert "\033[31m2\033[0m -> \033[32m3\033[0m" in _cli("log", "orders", "3", "--color", "always", dsn=history_track_dsn).stdout
    # The last N events of every table; JSON for scripts.
    proc = _cli("log", "-n", "2", dsn=history_track_dsn)
    assert [l.split()[3:6] for l in proc.stdout.splitlines() if l.startswith("#")] == [
        ["UPDATE", "orders", "1"], ["UPDATE", "orders", "3"]]
    events = json.loads(_cli("log", "orders", "1", "--json", dsn=history_track_dsn).stdout)
    assert [(e["pgh_label"], e["diff"]) for e in events] == [
        ("insert", {"id": [None, 1], "status": [None, "new"], "total": [None, 10]}),
        ("paid", {"status": ["new", "paid"]}),
        ("update", {"status": ["new", "paid"]}),
    ]
    # Errors: one line with the SQLSTATE, the hint, exit 1.
    proc = _cli("track", "orders", "--label", "insert", dsn=history_track_dsn)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0] == \
        'history-track: error: label "insert" is reserved for the default tracker (SQLSTATE 22023)'
    assert proc.stderr.splitlines()[-1].startswith("hint: Leave label out")
    proc = _cli("untrack", "orders", "--label", "paid", dsn=history_track_dsn)
    assert proc.stdout.strip() == "untracked tracker 'paid' of orders"
    proc = _cli("untrack", "orders", "--drop-events", dsn=history_track_dsn)
    assert proc.stdout.strip() == "untracked orders and dropped its history"
    assert conn.execute("SELECT to_regclass('orders_event')").fetchone() == (None,)


def test_progress_shows_time_for_long_work_on_a_terminal_only():
    import io

    from history_track.render import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    with Progress("track_table('orders', baseline => true)", out, delay=0.05, interval=0.05):
        time.sleep(0.4)
    frames = out.getvalue().split("\r")[1:]
    assert len(frames) >= 3
    assert all(f.startswith(("| ", "/ ", "- ", "\\ ")) for f in frames[:-1])
    assert frames[0][2:].startswith("track_table('orders', baseline => true) 0.")
    assert frames[-1].startswith("track_table('orders', baseline => true): done in 0.")
    assert frames[-1].endswith("s\033[K\n")

    quick = Tty()
    with Progress("quick", quick, delay=0.5):
        pass
    assert quick.getvalue() == ""          # nothing for quick work

    piped = io.StringIO()                  # not a terminal: silent
    with Progress("piped", piped, delay=0.0, interval=0.01):
        time.sleep(0.05)
    assert piped.getvalue() == ""

    failed = Tty()
    with pytest.raises(RuntimeError), Progress("boom", failed, delay=0.0, interval=0.01):
        time.sleep(0.05)
        raise RuntimeError
    assert failed.getvalue().split("\r")[-1].startswith("boom: failed after 0.")
