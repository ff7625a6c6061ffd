#!/usr/bin/env python3
"""history_track's write-path benchmark, side by side with django-pghistory.

    python3 bench/bench.py                    # everything: single-row, bulk, Django
    python3 bench/bench.py --single-row --rounds 2 --seconds 3    # a quick run
    python3 bench/bench.py --bulk --rounds 5
    python3 bench/bench.py --django --requests 2000
    python3 bench/bench.py --json out.json    # also every sample, as JSON
    python3 bench/bench.py --reading          # one row's history and replay at 1M and 10M events
    python3 bench/bench.py --index-costs      # what each event-table index costs a bulk write

The comparison (the default, or --single-row/--bulk/--django) runs in the
benchmark's own virtual environment: the first run creates it outside the
repository (HISTORY_TRACK_BENCH_VENV, else /var/cache/history_track/bench-venv
when writable, else ~/.cache/history_track/bench-venv), installs exactly
bench/requirements.txt (Django, django-pghistory, django-pgtrigger, psycopg)
and re-executes this script there; later runs reuse it while the requirements
file is unchanged. history_track is imported from this repository's python/.

It starts one temporary PostgreSQL server (fsync off) and migrates the Django
project in bench/django_project, whose tables all have one shape (id bigint
PRIMARY KEY, a integer, b text, c numeric(12,2), d timestamptz, e boolean):

    untracked   t_untracked, no history
    ours        t_ours, history_track's TrackModel (track_table() defaults)
    pgh-row     t_pgh_row, django-pghistory's row triggers (insert, update, delete)
    pgh-stmt    t_pgh_stmt, the same with level=pghistory.Statement

and, by SQL, the floors on copies of t_untracked (event tables LIKE t_ours_event):

    noop        AFTER ... FOR EACH STATEMENT triggers with transition tables
                that do nothing
    stmt-floor  statement triggers doing only INSERT INTO <event> SELECT ...
                FROM new_rows (old_rows for DELETE)
    row-floor   row triggers inserting one event row each
    cte-floor   (bulk only) no trigger: the statement writes its events itself,
                WITH w AS (<write> RETURNING *) INSERT INTO <event> SELECT ... FROM w

Single-row writes (--single-row): pgbench custom scripts, one plain autocommit
statement per transaction, 1 and 4 clients (--clients), each run --seconds
long: UPDATE ... SET a = a + 1 WHERE id = <random key>; INSERT of a new key
(from a sequence: a random key would collide); DELETE of one existing key (a
sequence's value scattered over the table by a bijection). Between runs the
table is restored with triggers off (session_replication_role = replica), its
event table emptied, vacuumed and checkpointed. With a context: BEGIN;
set_config(...); UPDATE; COMMIT, against the same transaction untracked.

Bulk (--bulk): INSERT ... SELECT of --rows rows into the empty table, UPDATE
of every row, DELETE of every row, one statement each.

Django (--django): --requests POSTs through Django's test client, each one
save() (an UPDATE by key) of a random row, under each variant's middleware
(none; pghistory's HistoryMiddleware; history_track's HistoryContextMiddleware).

Rounds alternate the variants, their order rotating between rounds. The report
gives medians and spread (min-max) over rounds; ratios are taken within each
round (neighbours in time) and their median reported. Timings on a shared
machine are noisy: compare ratios from one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
REQUIREMENTS = BENCH / "requirements.txt"

sys.path.insert(0, str(ROOT / "python"))
os.environ.setdefault("HISTORY_TRACK_SOURCE", str(ROOT))


# --- the benchmark's own virtual environment ---------------------------------


def venv_dir() -> Path:
    if os.environ.get("HISTORY_TRACK_BENCH_VENV"):
        return Path(os.environ["HISTORY_TRACK_BENCH_VENV"])
    cache = Path("/var/cache/history_track")
    if cache.is_dir() and os.access(cache, os.W_OK):
        return cache / "bench-venv"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "history_track" / "bench-venv"


def ensure_venv() -> Path:
    """The benchmark venv's python, (re)created when bench/requirements.txt
    or the Python version changed."""
    venv = venv_dir()
    python = venv / "bin" / "python"
    stamp = venv / "history_track-bench.sha256"
    want = hashlib.sha256(REQUIREMENTS.read_bytes() + sys.version.encode()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return python
    print(f"creating the benchmark's virtual environment in {venv}", file=sys.stderr)
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    # Exactly the pinned releases: --no-deps, then pip check that the pins are a closure.
    subprocess.run([*pip, "install", "--no-deps", "-r", str(REQUIREMENTS)], check=True)
    subprocess.run([*pip, "check"], check=True)
    stamp.write_text(want + "\n")
    return python


def in_venv() -> None:
    """Continue in the benchmark's venv (re-executing this script there)."""
    python = ensure_venv()
    if Path(sys.prefix).resolve() != python.parent.parent.resolve():
        sys.stdout.flush()
        os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


try:
    import psycopg

    from history_track.server import TemporaryServer
except ModuleNotFoundError:  # the comparison continues in the benchmark's venv, which has it
    if __name__ != "__main__":
        raise


# --- the variants --------------------------------------------------------------

COLS = "id, a, b, c, d, e"
# The event columns a floor writes (the rest of our event table's are NULL).
EVENT_COLS = f"pgh_created_at, pgh_label, pgh_operation, pgh_obj_id, {COLS}"
BULK_INSERT = (
    "INSERT INTO {table} (id, a, b, c, d, e)"
    " SELECT g, g % 1000, md5(g::text), g / 7.0, timestamptz '2026-01-01' + g * interval '1 second', g % 2 = 0"
    " FROM generate_series(1, {rows}) AS g"
)
CONTEXT_JSON = '{"user": 42, "url": "/orders/42/pay/", "method": "POST"}'


@dataclass(frozen=True)
class Variant:
    name: str
    table: str
    events: tuple[str, ...]  # its event tables
    what: str


VARIANTS = {
    v.name: v
    for v in (
        Variant("untracked", "t_untracked", (), "no history"),
        Variant("noop", "t_noop", (), "statement triggers with transition tables, doing nothing"),
        Variant(
            "stmt-floor", "t_stmt", ("t_stmt_event",), "statement triggers: INSERT INTO ev SELECT ... FROM new_rows"
        ),
        Variant("row-floor", "t_row", ("t_row_event",), "row triggers inserting one event row"),
        Variant("cte-floor", "t_cte", ("t_cte_event",), "no trigger: WITH w AS (... RETURNING *) INSERT INTO ev"),
        Variant("ours", "t_ours", ("t_ours_event",), "history_track, track_table() defaults (TrackModel)"),
        Variant("pgh-row", "t_pgh_row", ("benchapp_pghrowevent",), "django-pghistory, row triggers (default)"),
        Variant("pgh-stmt", "t_pgh_stmt", ("benchapp_pghstmtevent",), "django-pghistory, level=Statement"),
    )
}
SINGLE_ROW = ["untracked", "noop", "stmt-floor", "row-floor", "pgh-row", "pgh-stmt", "ours"]
BULK = ["untracked", "noop", "stmt-floor", "row-floor", "cte-floor", "pgh-row", "pgh-stmt", "ours"]


def floors_sql() -> str:
    """The floors, by hand, on copies of t_untracked; their event tables have
    our event table's columns and indexes (LIKE ... INCLUDING ALL)."""
    out = ["CREATE FUNCTION bench_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;"]
    for v in ("noop", "stmt-floor", "row-floor", "cte-floor"):
        out.append(f"CREATE TABLE {VARIANTS[v].table} (LIKE t_untracked INCLUDING ALL);")
        for ev in VARIANTS[v].events:
            out.append(f"CREATE TABLE {ev} (LIKE t_ours_event INCLUDING ALL);")
    transition = {
        "insert": "REFERENCING NEW TABLE AS new_rows",
        "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "delete": "REFERENCING OLD TABLE AS old_rows",
    }
    for op, ref in transition.items():
        rows, rec = ("old_rows", "OLD") if op == "delete" else ("new_rows", "NEW")
        out.append(
            f"CREATE TRIGGER noop_{op} AFTER {op.upper()} ON t_noop {ref}"
            " FOR EACH STATEMENT EXECUTE FUNCTION bench_noop();"
        )
        out.append(
            f"CREATE FUNCTION bench_stmt_{op}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" INSERT INTO t_stmt_event ({EVENT_COLS})"
            f" SELECT now(), '{op}', '{op.upper()}', id, {COLS} FROM {rows};"
            " RETURN NULL; END $$;"
        )
        out.append(
            f"CREATE TRIGGER stmt_{op} AFTER {op.upper()} ON t_stmt {ref}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION bench_stmt_{op}();"
        )
        values = ", ".join(f"{rec}.{c}" for c in COLS.split(", "))
        out.append(
            f"CREATE FUNCTION bench_row_{op}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" INSERT INTO t_row_event ({EVENT_COLS})"
            f" VALUES (now(), '{op}', '{op.upper()}', {rec}.id, {values});"
            " RETURN NULL; END $$;"
        )
        out.append(
            f"CREATE TRIGGER row_{op} AFTER {op.upper()} ON t_row FOR EACH ROW EXECUTE FUNCTION bench_row_{op}();"
        )
    out.append("CREATE SEQUENCE bench_key;")
    return "\n".join(out)


def bulk_statement(variant: str, op: str, rows: int) -> str:
    table = VARIANTS[variant].table
    write = {
        "insert": BULK_INSERT.format(table=table, rows=rows),
        "update": f"UPDATE {table} SET a = a + 1",
        "delete": f"DELETE FROM {table}",
    }[op]
    if variant != "cte-floor":
        return write
    return (
        f"WITH w AS ({write} RETURNING *) INSERT INTO t_cte_event ({EVENT_COLS})"
        f" SELECT now(), '{op}', '{op.upper()}', id, {COLS} FROM w"
    )


def scatter(rows: int) -> int:
    """A multiplier coprime with rows: n -> n * m % rows + 1 visits every key once."""
    m = 7919
    while math.gcd(m, rows) != 1:
        m += 2
    return m


def single_row_script(op: str, table: str, rows: int, setting: str | None = None) -> str:
    if op == "update":
        script = f"\\set id random(1, {rows})\n"
        stmt = f"UPDATE {table} SET a = a + 1 WHERE id = :id;\n"
    elif op == "insert":
        script = ""
        stmt = (
            f"INSERT INTO {table} (id, a, b, c, d, e)"
            " VALUES (nextval('bench_key'), 1, 'bench', 1.50, timestamptz '2026-01-01', true);\n"
        )
    elif op == "delete":
        script = ""
        stmt = f"DELETE FROM {table} WHERE id = (SELECT nextval('bench_key') * {scatter(rows)} % {rows} + 1);\n"
    elif op == "select":  # a plain statement's cost: the round trip and the executor, nothing else
        return "SELECT 1;\n"
    else:
        raise ValueError(op)
    if setting is None:
        return script + stmt
    if setting == "pghistory":
        set_it = (
            "SELECT set_config('pghistory.context_id', gen_random_uuid()::text, true),"
            f" set_config('pghistory.context_metadata', '{CONTEXT_JSON}', true);\n"
        )
    else:
        set_it = f"SELECT set_config('{setting}', '{CONTEXT_JSON}', true);\n"
    return script + "BEGIN;\n" + set_it + stmt + "COMMIT;\n"


# name -> (variant, setting); the same transaction shape for each.
CONTEXT_CASES = {
    "untracked, txn": ("untracked", "bench.unrelated"),
    "ours, txn, no context": ("ours", "bench.unrelated"),
    "ours, txn, context": ("ours", "history_track.context"),
    "pgh-row, txn, context": ("pgh-row", "pghistory"),
}


class Bench:
    def __init__(self, server: TemporaryServer, conn: psycopg.Connection[Any], rows: int) -> None:
        self.server = server
        self.conn = conn
        self.rows = rows
        self.transactions = 0  # pgbench -t instead of -T when set (tiny smoke runs)

    def sql(self, query: str) -> list[Any]:
        cur = self.conn.execute(query)
        return cur.fetchall() if cur.description else []

    @contextmanager
    def triggers_off(self) -> Iterator[None]:
        self.sql("SET session_replication_role = replica")
        try:
            yield
        finally:
            self.sql("SET session_replication_role = DEFAULT")

    def empty_events(self, tables: Sequence[str]) -> None:
        if not tables:
            return
        # Event tables are append-only; the benchmark, as superuser, opens the
        # guard the way prune_history() does.
        with self.conn.transaction():
            self.sql("SET LOCAL history_track.pruning = 'on'")
            self.sql(f"TRUNCATE {', '.join(tables)}")

    def fill(self, variants: Sequence[str]) -> None:
        """Each variant's table holds keys 1..rows, its events none."""
        with self.triggers_off():
            for v in variants:
                self.sql(f"TRUNCATE {VARIANTS[v].table}")
                self.sql(BULK_INSERT.format(table=VARIANTS[v].table, rows=self.rows))
        self.empty_events([e for v in variants for e in VARIANTS[v].events] + ["pghistory_context"])
        self.sql("VACUUM ANALYZE")
        self.sql("CHECKPOINT")

    def server_cpu(self) -> float:
        """CPU seconds the server's processes have used: the postmaster's own
        and those of its children that exited (cutime, cstime), plus those of
        the children alive. Read from /proc (Linux): on a shared machine, CPU
        time moves much less than wall time when other work competes."""
        tick = os.sysconf("SC_CLK_TCK")
        pid = self.postmaster()

        def times(stat: str, with_children: bool) -> int:
            fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
            own = int(fields[11]) + int(fields[12])  # utime, stime
            return own + (int(fields[13]) + int(fields[14]) if with_children else 0)

        total = times(Path(f"/proc/{pid}/stat").read_text(), True)
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with contextlib.suppress(FileNotFoundError):  # exited meanwhile: in the postmaster's cutime
                total += times(Path(f"/proc/{child}/stat").read_text(), True)
        return total / tick

    def postmaster(self) -> int:
        """The postmaster's pid: the server's process (setpriv runs it in its
        own place), not read from the data directory, which is its OS user's."""
        assert self.server.child_process is not None
        return self.server.child_process.pid

    def children(self) -> int:
        pid = self.postmaster()
        return len(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())

    def count(self, table: str, where: str = "true") -> int:
        return int(self.sql(f"SELECT count(*) FROM {table} WHERE {where}")[0][0])

    def pgbench(self, script: str, clients: int, seconds: int, limit: int = 0) -> tuple[float, int, float]:
        """tps, transactions and server CPU microseconds per transaction of a
        run of --seconds (or of --transactions, or limit, per client)."""
        limit = limit or self.transactions
        idle = self.children()
        cpu = self.server_cpu()
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
            f.write(script)
            path = f.name
        try:
            done = subprocess.run(
                [
                    str(self.server.installation.bindir / "pgbench"),
                    *("-n", "-M", "prepared", "-c", str(clients), "-j", str(clients)),
                    *(("-t", str(limit)) if limit else ("-T", str(seconds))),
                    *("-f", path),
                    *("-h", str(self.server.socket_dir), "-p", str(self.server.port), "-U", "postgres", "bench"),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            os.unlink(path)
        if done.returncode != 0:
            raise RuntimeError(f"pgbench failed:\n{script}\n{done.stdout}\n{done.stderr}")
        tps = xacts = None
        for line in done.stdout.splitlines():
            if line.startswith("tps ="):
                tps = float(line.split()[2])
            elif line.startswith("number of transactions actually processed:"):
                xacts = int(line.split(":")[1].split("/")[0])
        if tps is None or xacts is None:
            raise RuntimeError(done.stdout)
        for _ in range(100):  # until pgbench's backends have exited (and been reaped)
            if self.children() <= idle:
                break
            time.sleep(0.02)
        return tps, xacts, (self.server_cpu() - cpu) / xacts * 1e6

    def single_row_run(
        self, variant: str, op: str, clients: int, seconds: int, setting: str | None
    ) -> tuple[float, float]:
        v = VARIANTS[variant]
        script = single_row_script(op, v.table, self.rows, setting)
        limit = 0
        while True:
            if op in ("insert", "delete"):
                self.sql(f"ALTER SEQUENCE bench_key RESTART WITH {self.rows + 1 if op == 'insert' else 1}")
            tps, xacts, cpu = self.pgbench(script, clients, seconds, limit)
            # A DELETE run faster than --rows keys in --seconds ran out of keys: its
            # last deletes found nothing. Run it again, limited to 90% of the keys.
            again = op == "delete" and xacts > self.rows and not limit
            if not again:
                # What the run did, checked: every statement wrote its row (and event).
                changed = {
                    "insert": self.count(v.table, f"id > {self.rows}"),
                    "delete": self.rows - self.count(v.table),
                }
                if op in changed and changed[op] != xacts:
                    raise RuntimeError(f"{variant} {op}: {xacts} transactions but {changed[op]} rows")
                for ev in v.events:
                    got = self.count(ev)
                    if got != xacts:
                        raise RuntimeError(f"{variant} {op}: {xacts} transactions but {got} events in {ev}")
            # Back to the table as it was, without history; empty events; vacuum.
            with self.triggers_off():
                if op == "insert":
                    self.sql(f"DELETE FROM {v.table} WHERE id > {self.rows}")
                elif op == "delete":
                    self.sql(BULK_INSERT.format(table=v.table, rows=self.rows) + " ON CONFLICT (id) DO NOTHING")
            self.empty_events([*v.events, "pghistory_context"])
            self.sql(f"VACUUM ANALYZE {v.table}")
            self.sql("CHECKPOINT")
            if not again:
                return tps, cpu
            limit = max(1, self.rows * 9 // 10 // clients)
            print(f"  {variant} delete, {clients} clients: out of keys, again with -t {limit}", file=sys.stderr)


def rotate(items: Sequence[str], r: int) -> list[str]:
    k = r % len(items)
    return [*items[k:], *items[:k]]


def single_row(
    b: Bench, rounds: int, seconds: int, ops: Sequence[str], clients: Sequence[int], variants: Sequence[str]
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """tps and server CPU us per transaction, "op|clients|variant" -> one figure per round."""
    b.fill(sorted({*variants, *(v for v, _ in CONTEXT_CASES.values())}))
    tps: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}

    def record(key: str, figures: tuple[float, float]) -> None:
        tps.setdefault(key, []).append(figures[0])
        cpu.setdefault(key, []).append(figures[1])

    for r in range(rounds):
        if r == 0:
            t, _, c_us = b.pgbench(single_row_script("select", "", b.rows), 1, seconds)
            record("select|1|plain statement", (t, c_us))
        for op in ops:
            for c in clients:
                for v in rotate(variants, r):
                    record(f"{op}|{c}|{v}", b.single_row_run(v, op, c, seconds, None))
        if "update" in ops:
            for c in clients:
                for name in rotate(list(CONTEXT_CASES), r):
                    v, setting = CONTEXT_CASES[name]
                    record(f"context|{c}|{name}", b.single_row_run(v, "update", c, seconds, setting))
        print(f"  single-row round {r + 1}/{rounds} done ({time.strftime('%H:%M:%S')})", file=sys.stderr)
    return tps, cpu


def bulk(
    b: Bench, rounds: int, ops: Sequence[str], variants: Sequence[str]
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and server CPU seconds, "op|variant" -> one figure per round."""
    times: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    all_events = [e for v in variants for e in VARIANTS[v].events]
    for r in range(rounds):
        b.sql(f"TRUNCATE {', '.join(VARIANTS[v].table for v in variants)}")
        b.empty_events(all_events)
        for op in ("insert", "update", "delete"):
            # (insert, update and delete always run, each filling or emptying the
            # table for the next; only those of --ops are reported)
            b.sql("VACUUM ANALYZE")
            b.sql("CHECKPOINT")
            for v in rotate(variants, r):
                cpu_before = b.server_cpu()
                started = time.perf_counter()
                b.sql(bulk_statement(v, op, b.rows))
                elapsed = time.perf_counter() - started
                if op in ops:
                    times.setdefault(f"{op}|{v}", []).append(elapsed)
                    cpu.setdefault(f"{op}|{v}", []).append(b.server_cpu() - cpu_before)
        for v in variants:  # every tracked variant recorded every row
            for ev in VARIANTS[v].events:
                got = b.count(ev)
                if got != 3 * b.rows:
                    raise RuntimeError(f"bulk {v}: {got} events in {ev}, expected {3 * b.rows}")
        print(f"  bulk round {r + 1}/{rounds} done ({time.strftime('%H:%M:%S')})", file=sys.stderr)
    return times, cpu


def django_e2e(b: Bench, rounds: int, requests: int) -> dict[str, list[float]]:
    from bench_settings import MIDDLEWARE
    from django.test import Client, override_settings

    b.fill(["untracked", "pgh-row", "ours"])
    clients = {}
    for name, middleware in MIDDLEWARE.items():
        with override_settings(MIDDLEWARE=middleware):
            client = Client()
            client.handler.load_middleware()  # each client keeps its own chain
        clients[name] = client
    rng = random.Random(21)

    def run(name: str, n: int) -> float:
        client = clients[name]
        started = time.perf_counter()
        for _ in range(n):
            response = client.post(f"/{name}/{rng.randint(1, b.rows)}/")
            if response.status_code != 204:
                raise RuntimeError(f"{name}: {response.status_code} {response.content[:500]!r}")
        return (time.perf_counter() - started) / n * 1e6

    for name in clients:  # warm-up: connections, plans, imports
        run(name, 50)
    us: dict[str, list[float]] = {}
    for r in range(rounds):
        for name in rotate(list(clients), r):
            us.setdefault(name, []).append(run(name, requests))
        print(f"  django round {r + 1}/{rounds} done ({time.strftime('%H:%M:%S')})", file=sys.stderr)
    total = 50 + rounds * requests
    ours = b.count("t_ours_event", "pgh_context ->> 'url' LIKE '/ours/%'")
    pgh = b.count(
        "benchapp_pghrowevent AS e JOIN pghistory_context AS c ON c.id = e.pgh_context_id",
        "c.metadata ->> 'url' LIKE '/pghistory/%'",
    )
    if (ours, pgh) != (total, total):
        raise RuntimeError(f"django: {total} requests each, events with context: ours {ours}, pghistory {pgh}")
    return us


# --- the report ------------------------------------------------------------------


def spread(values: Sequence[float], fmt: str = "{:.0f}") -> str:
    if len(values) < 2:
        return ""
    return f"[{fmt.format(min(values))}-{fmt.format(max(values))}]"


def ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    return [x / y for x, y in zip(a, b)]


def report_single_row(
    tps: dict[str, list[float]], cpu: dict[str, list[float]], ops: Sequence[str], clients: Sequence[int]
) -> list[str]:
    """Per variant: tps, its ratio to untracked, 1/tps and its excess over
    untracked in us, and the server's CPU per transaction and its excess."""
    out = []
    if "select|1|plain statement" in tps:
        t = statistics.median(tps["select|1|plain statement"])
        c_us = statistics.median(cpu["select|1|plain statement"])
        out.append(
            f"a plain statement (SELECT 1), 1 client: {t:.0f} tps, {1e6 / t:.1f} us per statement,"
            f" {c_us:.1f} us of server CPU\n"
        )
    head = (
        f"{'':<24}{'tps':>8} {'[min-max]':<15}{'/untracked':>11} {'[min-max]':<13}{'us/stmt':>8}{'+us':>8}"
        f"{'cpu us':>8}{'+cpu':>7}"
    )
    for op in [*ops, "context"] if "update" in ops else ops:
        for c in clients:
            keys = [k for k in tps if k.startswith(f"{op}|{c}|")]
            if not keys:
                continue
            title = (
                "UPDATE by key in BEGIN; set_config(...); UPDATE; COMMIT"
                if op == "context"
                else {
                    "update": "UPDATE ... SET a = a + 1 WHERE id = <random key>",
                    "insert": "INSERT of one new key",
                    "delete": "DELETE of one key",
                }[op]
            )
            out.append(
                f"{title}, {c} client{'s' if c > 1 else ''}"
                " (tps; ratio to untracked; 1/tps; server CPU per transaction)"
            )
            out.append(head)
            base_key = f"{op}|{c}|" + ("untracked, txn" if op == "context" else "untracked")
            base = tps[base_key]
            base_cpu = statistics.median(cpu[base_key])
            for k in keys:
                v = k.split("|", 2)[2]
                t = statistics.median(tps[k])
                rr = ratios(tps[k], base)
                extra = 1e6 / t - 1e6 / statistics.median(base)
                c_us = statistics.median(cpu[k])
                out.append(
                    f"  {v:<22}{t:>8.0f} {spread(tps[k]):<15}{statistics.median(rr):>10.2f}x "
                    f"{spread(rr, '{:.2f}'):<13}{1e6 / t:>8.1f}{extra:>+8.1f}{c_us:>8.1f}{c_us - base_cpu:>+7.1f}"
                )
            if op != "context" and f"{op}|{c}|ours" in tps and f"{op}|{c}|pgh-row" in tps:
                rr = ratios(tps[f"{op}|{c}|ours"], tps[f"{op}|{c}|pgh-row"])
                out.append(f"  ours / pgh-row: {statistics.median(rr):.2f}x {spread(rr, '{:.2f}')}")
            if op == "context":
                rr = ratios(tps[f"context|{c}|ours, txn, context"], tps[f"context|{c}|ours, txn, no context"])
                out.append(f"  ours with context / ours without: {statistics.median(rr):.2f}x {spread(rr, '{:.2f}')}")
            out.append("")
    return out


def report_bulk(times: dict[str, list[float]], cpu: dict[str, list[float]], ops: Sequence[str], rows: int) -> list[str]:
    title = (
        f"Bulk, one statement of {rows} rows (wall ms, ratios within each round, medians [min-max];"
        " server CPU ms and ours/this by CPU)"
    )
    out = [title]
    out.append(
        f"{'':<13}{'ms':>7} {'[min-max]':<13}{'/untracked':>11}{'/stmt-floor':>12}{'ours/this':>10} {'[min-max]':<12}"
        f"{'cpu ms':>7}{'ours/this':>10}"
    )
    for op in ops:
        out.append(op.upper())
        variants = [k.split("|")[1] for k in times if k.startswith(f"{op}|")]
        for v in variants:
            t = times[f"{op}|{v}"]
            to_u = statistics.median(ratios(t, times[f"{op}|untracked"])) if f"{op}|untracked" in times else math.nan
            to_f = statistics.median(ratios(t, times[f"{op}|stmt-floor"])) if f"{op}|stmt-floor" in times else math.nan
            ours = ratios(times[f"{op}|ours"], t) if f"{op}|ours" in times else [math.nan]
            c = cpu[f"{op}|{v}"]
            ours_cpu = ratios(cpu[f"{op}|ours"], c) if f"{op}|ours" in cpu and min(c) > 0 else [math.nan]
            out.append(
                f"  {v:<11}{statistics.median(t) * 1000:>7.0f} {spread([x * 1000 for x in t]):<13}"
                f"{to_u:>10.2f}x{to_f:>11.2f}x{statistics.median(ours):>9.2f}x {spread(ours, '{:.2f}'):<12}"
                f"{statistics.median(c) * 1000:>7.0f}{statistics.median(ours_cpu):>9.2f}x"
            )
    out.append("")
    return out


def report_django(us: dict[str, list[float]], requests: int) -> list[str]:
    out = [f"Django end to end: {requests} POSTs per variant and round, each one save() (us per request)"]
    for name, values in us.items():
        rr = ratios(values, us["plain"])
        out.append(
            f"  {name:<12}{statistics.median(values):>8.0f} us {spread(values):<15}"
            f"{statistics.median(rr):>6.2f}x plain {spread(rr, '{:.2f}')}"
        )
    if "ours" in us and "pghistory" in us:
        rr = ratios(us["ours"], us["pghistory"])
        out.append(f"  ours / pghistory: {statistics.median(rr):.2f}x {spread(rr, '{:.2f}')}")
    out.append("")
    return out


def report_targets(results: dict[str, Any]) -> list[str]:
    """Issue 21's targets, each with the run's median of per-round ratios."""
    tps: dict[str, list[float]] = results.get("single_row_tps", {})
    times: dict[str, list[float]] = results.get("bulk_seconds", {})
    checks: list[tuple[str, list[float], str, float]] = []  # what, per-round ratios, ">=" or "<=", bound
    for op in ("insert", "update", "delete"):
        for c, bound in ((1, 0.70), (4, 0.60)):
            k = f"{op}|{c}|"
            if k + "ours" in tps:
                checks.append(
                    (
                        f"{op}, {c} client(s): ours / untracked",
                        ratios(tps[k + "ours"], tps[k + "untracked"]),
                        ">=",
                        bound,
                    )
                )
                checks.append(
                    (f"{op}, {c} client(s): ours / pgh-row", ratios(tps[k + "ours"], tps[k + "pgh-row"]), ">=", 1.15)
                )
    for c in (1, 4):
        k = f"context|{c}|"
        if k + "ours, txn, context" in tps:
            checks.append(
                (
                    f"update in a transaction, {c} client(s): with context / without",
                    ratios(tps[k + "ours, txn, context"], tps[k + "ours, txn, no context"]),
                    ">=",
                    0.95,
                )
            )
    for op in ("insert", "update", "delete"):
        if f"{op}|ours" in times:
            if op != "delete":
                checks.append(
                    (f"bulk {op}: ours / pgh-stmt", ratios(times[f"{op}|ours"], times[f"{op}|pgh-stmt"]), "<=", 0.9)
                )
            checks.append(
                (f"bulk {op}: ours / stmt-floor", ratios(times[f"{op}|ours"], times[f"{op}|stmt-floor"]), "<=", 1.05)
            )
    if not checks:
        return []
    out = ["Against issue 21's targets (median of per-round ratios [min-max])"]
    for what, rr, sense, bound in checks:
        m = statistics.median(rr)
        met = m >= bound if sense == ">=" else m <= bound
        out.append(
            f"  {what:<62}{m:>6.2f}x {spread(rr, '{:.2f}'):<12} target {sense} {bound:.2f}: "
            f"{'met' if met else 'NOT met'}"
        )
    out.append("")
    return out


def report(results: dict[str, Any]) -> list[str]:
    args = argparse.Namespace(**results["args"])
    ops = args.ops.split(",")
    lines = [results.get("head", f"PostgreSQL {results.get('version')}\n")]
    if "single_row_tps" in results:
        lines += report_single_row(
            results["single_row_tps"], results["single_row_cpu_us"], ops, [int(c) for c in args.clients.split(",")]
        )
    if "bulk_seconds" in results:
        lines += report_bulk(results["bulk_seconds"], results["bulk_cpu_seconds"], ops, args.rows)
    if "django_us_per_request" in results:
        lines += report_django(results["django_us_per_request"], args.requests)
    return lines + report_targets(results)


def compare(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(BENCH / "django_project"))
    import django
    import pghistory
    from bench_settings import settings_for
    from django.conf import settings
    from django.core.management import call_command

    which = {k for k in ("single_row", "bulk", "django") if getattr(args, k)} or {"single_row", "bulk", "django"}
    ops = args.ops.split(",")
    clients = [int(c) for c in args.clients.split(",")]
    results: dict[str, Any] = {}
    lines: list[str] = []
    with TemporaryServer(
        pg_config=args.pg_config,
        # No autovacuum: the benchmark vacuums between runs itself, so that no
        # variant's run meets a vacuum another variant's writes triggered.
        postgres_args=TemporaryServer.POSTGRES_ARGS + " -c autovacuum=off -c shared_buffers=512MB -c max_wal_size=4GB",
    ) as server:
        with psycopg.connect(server.conninfo("postgres"), autocommit=True) as c:
            c.execute("CREATE DATABASE bench")
        settings.configure(**settings_for(str(server.socket_dir), server.port, "postgres", "bench"))
        django.setup()
        call_command("migrate", verbosity=0)
        conninfo = f"host={server.socket_dir} port={server.port} user=postgres dbname=bench"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(floors_sql())
            b = Bench(server, conn, args.rows)
            b.transactions = args.transactions
            version = conn.execute("SHOW server_version").fetchone()[0]
            head = (
                f"PostgreSQL {version} (fsync off), django-pghistory {pghistory.__version__},"
                f" Django {django.__version__};"
                f" {args.rows} rows; {args.rounds} rounds; pgbench runs of {args.seconds} s; medians [min-max]\n"
            )
            lines.append(head)
            print(head, flush=True)
            if "single_row" in which:
                tps, cpu = single_row(b, args.rounds, args.seconds, ops, clients, SINGLE_ROW)
                results["single_row_tps"] = tps
                results["single_row_cpu_us"] = cpu
                part = report_single_row(tps, cpu, ops, clients)
                lines += part
                print("\n".join(part), flush=True)
            if "bulk" in which:
                times, cpu = bulk(b, args.rounds, ops, BULK)
                results["bulk_seconds"] = times
                results["bulk_cpu_seconds"] = cpu
                part = report_bulk(times, cpu, ops, args.rows)
                lines += part
                print("\n".join(part), flush=True)
            if "django" in which:
                us = django_e2e(b, args.rounds, args.requests)
                results["django_us_per_request"] = us
                part = report_django(us, args.requests)
                lines += part
                print("\n".join(part), flush=True)
        from django.db import connections

        connections.close_all()
    print("\n".join(report_targets(results)), flush=True)
    if args.json:
        saved = {"head": head, "version": version, "args": vars(args), **results}
        Path(args.json).write_text(json.dumps(saved, indent=1))
    return 0


# --- --reading and --index-costs (history_track alone) ---------------------------

SHAPE = "id int PRIMARY KEY, a int NOT NULL, b text, c numeric(12,2), d timestamptz"
LEGACY_COLS = "id, a, b, c, d"
INSERT_SELECT = (
    "SELECT g, g % 1000, md5(g::text), g / 7.0, timestamptz '2026-01-01' + g * interval '1 second'"
    " FROM generate_series(1, {n}) g"
)


def reset(conn: psycopg.Connection[Any], tables: str) -> None:
    # Event tables are append-only; the benchmark, as superuser, opens the guard
    # the way prune_history() does, to start each round from empty tables.
    with conn.transaction():
        conn.execute("SET LOCAL history_track.pruning = 'on'")
        conn.execute(f"TRUNCATE {tables}")
    conn.execute("VACUUM ANALYZE")
    conn.execute("CHECKPOINT")


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
    conn.execute(f"INSERT INTO {table} ({LEGACY_COLS}) " + INSERT_SELECT.format(n=n))
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


def alone(args: argparse.Namespace) -> int:
    """--reading and --index-costs: history_track alone, no peer."""
    with TemporaryServer(
        pg_config=args.pg_config,
        postgres_args=TemporaryServer.POSTGRES_ARGS + " -c shared_buffers=512MB -c max_wal_size=4GB",
    ) as server:
        with psycopg.connect(server.conninfo("postgres"), autocommit=True) as c:
            c.execute("CREATE DATABASE bench")
        with psycopg.connect(server.conninfo("bench"), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION history_track")
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single-row", action="store_true", help="single-row writes with pgbench")
    parser.add_argument("--bulk", action="store_true", help="bulk statements of --rows rows")
    parser.add_argument("--django", action="store_true", help="Django end to end, through the test client")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="duration of each pgbench run")
    parser.add_argument(
        "--transactions", type=int, default=0, help="pgbench transactions per client instead of --seconds (smoke runs)"
    )
    parser.add_argument("--ops", default="insert,update,delete", help="statements of --single-row and --bulk")
    parser.add_argument("--clients", default="1,4", help="pgbench client counts")
    parser.add_argument("--requests", type=int, default=1000, help="Django requests per variant and round")
    parser.add_argument("--json", metavar="PATH", help="also write every sample and the settings as JSON")
    parser.add_argument("--pg-config", default=None)
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
    parser.add_argument("--report", metavar="PATH", help="print the report of a run saved with --json, and exit")
    args = parser.parse_args()
    if args.report:
        print("\n".join(report(json.loads(Path(args.report).read_text()))))
        return 0
    if args.reading or args.index_costs:
        return alone(args)
    in_venv()
    return compare(args)


if __name__ == "__main__":
    sys.exit(main())
