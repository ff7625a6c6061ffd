"""bench/bench.py runs: a smoke run at tiny sizes, not a timed test. The
benchmark checks its own measurements as it goes (every pgbench transaction
wrote its row and its event, every bulk statement recorded every row, every
Django request recorded its context in ours and in pghistory) and exits
non-zero otherwise; this test runs every section once and reads the JSON."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT

SINGLE_ROW = ["untracked", "noop", "stmt-floor", "row-floor", "pgh-row", "pgh-stmt", "ours"]
CONTEXT = ["untracked, txn", "ours, txn, no context", "ours, txn, context", "pgh-row, txn, context"]
BULK = ["untracked", "noop", "stmt-floor", "row-floor", "cte-floor", "pgh-row", "pgh-stmt", "ours"]


def test_every_section_runs_at_tiny_sizes(tmp_path, pytestconfig):
    out = tmp_path / "bench.json"
    argv = [sys.executable, str(ROOT / "bench" / "bench.py"), "--rows", "2000", "--rounds", "1",
            "--transactions", "30", "--clients", "1", "--requests", "10", "--json", str(out)]
    pg_config = pytestconfig.getoption("--history-track-pg-config")
    if pg_config:
        argv += ["--pg-config", pg_config]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    got = json.loads(out.read_text())
    assert sorted(got["single_row_tps"]) == sorted(
        ["select|1|plain statement"]
        + [f"{op}|1|{v}" for op in ("insert", "update", "delete") for v in SINGLE_ROW]
        + [f"context|1|{v}" for v in CONTEXT]
    )
    assert sorted(got["single_row_cpu_us"]) == sorted(got["single_row_tps"])
    assert sorted(got["bulk_cpu_seconds"]) == sorted(got["bulk_seconds"])
    assert sorted(got["bulk_seconds"]) == sorted(f"{op}|{v}" for op in ("insert", "update", "delete") for v in BULK)
    assert sorted(got["django_us_per_request"]) == ["ours", "pghistory", "plain"]
    samples = [*got["single_row_tps"].values(), *got["bulk_seconds"].values(), *got["django_us_per_request"].values()]
    assert all(len(s) == 1 and s[0] > 0 for s in samples), samples
    cpu = [*got["single_row_cpu_us"].values(), *got["bulk_cpu_seconds"].values()]
    assert all(len(s) == 1 and s[0] >= 0 for s in cpu), cpu
    for line in ("ours / pgh-row:", "ours with context / ours without:", "Bulk, one statement of 2000 rows",
                 "ours / pghistory:", "Against issue 21's targets", "bulk update: ours / pgh-stmt"):
        assert line in done.stdout, done.stdout
    # The saved run prints the same report again.
    again = subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--report", str(out)],
                           capture_output=True, text=True, timeout=60, check=True)
    assert again.stdout == done.stdout
