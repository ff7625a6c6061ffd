"""The history-track command."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import pytest
from psycopg import sql


@pytest.fixture
def private_tmp():
    """A TMPDIR of the test's own (the server's OS user can enter it): what a
    command leaves behind is there, whatever else runs on the machine."""
    path = tempfile.mkdtemp(prefix="ht_sandbox_")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


COMMANDS = [[], ["demo"], ["install"], ["log"], ["sandbox"], ["track"], ["uninstall"], ["untrack"], ["version"]]


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


def test_demo_runs_quickly_and_leaves_nothing_behind(private_tmp):
    started = time.monotonic()
    proc = subprocess.run(["history-track", "demo"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": private_tmp})
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
    assert os.listdir(private_tmp) == []


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
    assert proc.stdout.splitlines()[:3] == ["history of orders goes to orders_event; its trackers:",
                                            "label   operations  snapshot", "------  ----------  --------"]
    proc = _cli("track", "orders", "--label", "paid", "--operations", "update", "--condition", "NEW.status = 'paid'",
                dsn=history_track_dsn)
    # A labelled table: each tracker's label, operations and (when some have one) condition.
    header, rule, *rows = proc.stdout.splitlines()[1:]
    assert header.split() == ["label", "operations", "condition", "snapshot"]
    assert [r.split()[:2] for r in rows] == [["insert", "insert"], ["update", "update"], ["delete", "delete"],
                                             ["paid", "update"]]
    condition = rows[-1][header.index("condition"):]
    assert "status" in condition and "'paid'" in condition   # as typed, or as PostgreSQL deparses it
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
    # JSON for scripts.
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


# What a terminal acts on rather than shows: ESC (cursor moves, erasing, SGR 8
# "conceal", OSC 52 clipboard writes), CR, BEL, backspace, DEL, the 8-bit CSI,
# bidirectional override and isolate, zero-width joiner, line separator.
HOSTILE = "\x1b\r\x07\x08\x7f\x9b\u202e\u2066\u200d\u2028\U000e0030"  # ... and a tag character, beyond U+FFFF


def test_what_the_database_holds_reaches_the_terminal_escaped(history_track_conn, history_track_dsn):
    """The table's owner names its columns and trackers, a writer chooses values and
    manual labels: log, log --json, track and error messages show every character a
    terminal would act on as an escape (ESC as \\u001b), so nobody who wrote to the
    database can erase, conceal, reorder or forge what the reader of its history
    sees; --json still reads as the same strings."""
    conn = history_track_conn
    column, label, manual, note = (f"{w}{HOSTILE}" for w in ("col", "lab", "man", "val"))
    conn.execute(sql.SQL("CREATE TABLE acct (id int PRIMARY KEY, {} text, note text)").format(sql.Identifier(column)))
    conn.execute("SELECT track_table('acct')")
    proc = _cli("track", "acct", "--label", label, "--operations", "update", dsn=history_track_dsn)
    assert proc.returncode == 0, proc.stderr
    conn.execute("INSERT INTO acct VALUES (1, 'x', %s)", [note])
    conn.execute("UPDATE acct SET note = 'y' WHERE id = 1")
    with conn.transaction():
        conn.execute("SELECT 1 FROM acct WHERE id = 1 FOR UPDATE")
        conn.execute("SELECT record_history_event('acct', 1, %s)", [manual])
    runs = {
        "track": proc,
        "log": _cli("log", "acct", "1", dsn=history_track_dsn),
        "log --color": _cli("log", "acct", "1", "--color", "always", dsn=history_track_dsn),
        "log --json": _cli("log", "acct", "1", "--json", dsn=history_track_dsn),
        "error": _cli("track", "acct", "--label", label, "--condition", f"NEW.nope{HOSTILE} = 1", dsn=history_track_dsn),
    }
    # (As JSON writes them: a character beyond U+FFFF as its UTF-16 surrogate pair.)
    escaped = "".join(f"\\u{unit:04x}" for unit in struct.unpack(f"<{len(HOSTILE.encode('utf-16-le')) // 2}H", HOSTILE.encode("utf-16-le")))
    for name, run in runs.items():
        shown = run.stdout + run.stderr
        if name == "log --color":  # our own colours, and nothing else
            shown = re.sub("\x1b\\[(0|1|2|31|32|33|36)m", "", shown)
        assert not set(HOSTILE) & set(shown), (name, shown)
        assert escaped in shown or name == "log --json", (name, shown)
    log = runs["log"].stdout
    assert f'    col{escaped}: "x"' in log and '    note: "val\\u001b\\r\\u0007\\b\\u007f\\u009b\\u202e\\u2066\\u200d\\u2028\\udb40\\udc30" -> "y"' in log
    assert f"lab{escaped}" in log and f"man{escaped}" in log
    assert runs["error"].returncode == 1 and runs["error"].stderr.startswith("history-track: error: ")
    assert f'tracker "lab{escaped}"' in runs["error"].stderr and f'"col{escaped}"' in runs["error"].stderr
    events = json.loads(runs["log --json"].stdout)
    assert [(e["pgh_label"], e["diff"]) for e in events] == [
        ("insert", {"id": [None, 1], column: [None, "x"], "note": [None, note]}),
        (label, {"note": [note, "y"]}),
        ("update", {"note": [note, "y"]}),
        (manual, {}),
    ]


def test_an_error_message_from_the_database_cannot_start_a_line_of_its_own():
    """A DETAIL or HINT names what the table's owner named, line feeds included:
    the lines after the first are indented, so none reads as the CLI's own."""
    from history_track.cli import _message
    assert _message("detail: column a\nhistory-track: error: forged\x1b[2K").splitlines() == [
        "detail: column a", "  history-track: error: forged\\u001b[2K"]


def test_log_of_every_table_is_one_timeline_of_the_latest_events(history_track_conn, history_track_dsn):
    """log -n N without a table: the latest N events of all tables together, in
    time order (then table, then id), each with its table in a column of its own."""
    conn = history_track_conn
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text)")
    assert _cli("track", "orders", dsn=history_track_dsn).returncode == 0
    assert _cli("track", "customers", dsn=history_track_dsn).returncode == 0
    for stmt in ["INSERT INTO orders VALUES (1, 'new')", "INSERT INTO customers VALUES (1, 'ann')",
                 "UPDATE orders SET status = 'paid'", "UPDATE customers SET name = 'bob'",
                 "INSERT INTO orders VALUES (2, 'new')", "INSERT INTO customers VALUES (2, 'cy')"]:
        conn.execute(stmt)
    proc = _cli("log", "-n", "4", dsn=history_track_dsn)
    assert proc.returncode == 0, proc.stderr
    headers = [line for line in proc.stdout.splitlines() if not line.startswith(" ")]
    assert [h.split()[:2] + h.split()[4:6] for h in headers] == [
        ["orders", "#2", "UPDATE", "1"], ["customers", "#2", "UPDATE", "1"],
        ["orders", "#3", "INSERT", "2"], ["customers", "#3", "INSERT", "2"]]
    assert len({h.index("#") for h in headers}) == 1          # the table is a column
    # The same through the API: one timeline, oldest first.
    import history_track
    events = history_track.history(conn, last=3)
    assert [(e.table_name, e.id) for e in events] == [("customers", 2), ("orders", 3), ("customers", 3)]
    assert [(e.table_name, e.id) for e in history_track.history(conn)][:2] == [("orders", 1), ("customers", 1)]


def test_a_database_without_the_extension_says_how_to_install_it(history_track_server):
    import psycopg
    with psycopg.connect(history_track_server.conninfo("postgres"), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS plain")
        conn.execute("CREATE DATABASE plain")
    for args in (["track", "orders"], ["log"], ["untrack", "orders"]):
        proc = _cli(*args, dsn=history_track_server.conninfo("plain"))
        assert proc.returncode == 1
        assert proc.stderr.splitlines() == [
            'history-track: error: history_track is not installed in database "plain"',
            "hint: run CREATE EXTENSION history_track; in it (the server has the extension's files)"]


def test_a_connection_failure_is_one_line_and_a_hint():
    proc = _cli("log", dsn="host=127.0.0.1 port=1 dbname=app connect_timeout=5")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        'history-track: error: cannot connect to the database: connection to server at "127.0.0.1", port 1 failed:'
        " Connection refused",
        "hint: say where with --dsn 'host=... port=... dbname=... user=...', or with libpq's PGHOST, PGPORT,"
        " PGDATABASE, PGUSER and PGPASSWORD variables"]
    # From libpq's variables, without --dsn: the same.
    env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": "1"}
    proc = subprocess.run(["history-track", "track", "orders"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1 and "SQLSTATE None" not in proc.stderr
    assert proc.stderr.splitlines()[1].startswith("hint: say where with --dsn")


def test_untracking_a_table_that_is_not_tracked_is_an_error(history_track_conn, history_track_dsn):
    conn = history_track_conn
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    conn.execute("CREATE TABLE nopk (a int)")
    proc = _cli("untrack", "nopk", dsn=history_track_dsn)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.splitlines() == [
        "history-track: error: nopk is not tracked: nothing was changed",
        "hint: SELECT DISTINCT table_name FROM history_trackers lists the tracked tables"]
    proc = _cli("untrack", "nopk", "--drop-events", dsn=history_track_dsn)
    assert (proc.returncode, proc.stderr) == (1, "history-track: error: nopk has no history to drop: it is not tracked\n")
    # Untracked earlier, its history kept: untrack again is refused, --drop-events drops that history.
    assert _cli("track", "orders", dsn=history_track_dsn).returncode == 0
    assert _cli("untrack", "orders", dsn=history_track_dsn).stdout == "untracked orders\n"
    assert _cli("untrack", "orders", dsn=history_track_dsn).returncode == 1
    proc = _cli("untrack", "orders", "--drop-events", dsn=history_track_dsn)
    assert (proc.returncode, proc.stdout) == (0, "dropped the history of orders (it was no longer tracked)\n")
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


def test_help_reads_like_gits_and_lists_every_command():
    from history_track.cli import build_parser
    proc = subprocess.run(["history-track"], capture_output=True, text=True)
    assert proc.returncode == 1                 # no command: the overview, as git does
    assert proc.stdout.startswith("usage: history-track [--version] [--help] <command> [<args>]\n")
    listed = {line.split()[0] for line in proc.stdout.splitlines() if line.startswith("   ")}
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert listed == commands
    assert {c[0] for c in COMMANDS if c} == commands
    assert proc.stdout.rstrip().endswith("'history-track <command> --help' tells more about a command.")


# -- history-track sandbox ---------------------------------------------------------------

@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_sandbox_without_a_terminal_prints_its_dsn_and_cleans_up_when_stopped(sig, private_tmp):
    import signal

    import psycopg

    import history_track
    proc = subprocess.Popen(["history-track", "sandbox"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": private_tmp})
    try:
        dsn = proc.stdout.readline().strip()   # the one line on stdout, once the server is ready
        assert dsn.endswith(" user=postgres dbname=sandbox"), proc.stderr.read() if not dsn else dsn
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'history_track'").fetchone() \
                == (history_track.__version__,)
            conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
            conn.execute("SELECT track_table('t')")
            conn.execute("INSERT INTO t VALUES (1)")
            assert conn.execute("SELECT pgh_operation FROM t_event").fetchall() == [("INSERT",)]
    finally:
        proc.send_signal(getattr(signal, sig))
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == ""
    assert err.splitlines()[0] == f"history_track {history_track.__version__}: starting a throwaway PostgreSQL server ..."
    assert "removed when this command ends (Ctrl-C)" in err and err.splitlines()[-1] == "sandbox removed"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=5)
    assert os.listdir(private_tmp) == []


def test_sandbox_on_a_terminal_opens_psql_survives_ctrl_c_and_goes_with_it(private_tmp):
    import fcntl
    import pty
    import select
    import signal
    import struct
    import termios

    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    pid, fd = pty.fork()
    if pid == 0:  # the child: history-track on a terminal
        os.environ.update(PSQLRC=os.devnull, TMPDIR=private_tmp)
        os.execvp("history-track", ["history-track", "sandbox"])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    seen = b""

    def expect(text: bytes, timeout: float = 60) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while text not in seen:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"no {text!r} in {seen.decode(errors='replace')!r}")
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                raise AssertionError(f"ended before {text!r}: {seen.decode(errors='replace')!r}")
            seen += chunk

    try:
        expect(b"sandbox=#")
        assert b"Everything is removed when you leave psql" in seen
        os.write(fd, b"SELECT extname FROM pg_extension WHERE extname = 'history_track';\n")
        expect(b"(1 row)")
        os.write(fd, b"SELECT pg_sleep(60);\n")
        time.sleep(1)
        os.write(fd, b"\x03")                  # Ctrl-C: psql cancels the statement ...
        expect(b"canceling statement due to user request")
        os.write(fd, b"SELECT 6 * 7 AS answer;\n")   # ... and the server is still there
        expect(b"42\r\n(1 row)")
        os.write(fd, b"\\q\n")
        expect(b"sandbox removed")
    finally:
        if b"sandbox removed" not in seen:
            os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert os.listdir(private_tmp) == []
