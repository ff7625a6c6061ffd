"""tools/all_majors.py: pytest's progress shown live for each run, and a
closing table whose columns line up."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import time

from conftest import ROOT

spec = importlib.util.spec_from_file_location("all_majors", ROOT / "tools" / "all_majors.py")
assert spec is not None and spec.loader is not None
all_majors = importlib.util.module_from_spec(spec)
sys.modules["all_majors"] = all_majors   # dataclasses look their module up there
spec.loader.exec_module(all_majors)


def test_summary_lines_up_for_every_major_and_the_no_extension_run():
    R = all_majors.Result
    results = [R("14", "14.23", "extension", 1079, 0, 6, 118.4), R("15", "15.14", "extension", 1079, 0, 6, 101.2),
               R("16", "16.15", "extension", 1079, 0, 6, 99.9), R("17", "17.11", "extension", 1078, 1, 6, 105.0),
               R("18", "18.6", "extension", 1079, 0, 6, 112.5), R("15", "15.14", "no-extension", 1081, 0, 4, 9.6)]
    assert all_majors.summary(results) == [
        "major  version  install       passed  failed  skipped   time",
        "-----  -------  ------------  ------  ------  -------  -----",
        "14     14.23    extension       1079       0        6  1m58s",
        "15     15.14    extension       1079       0        6  1m41s",
        "16     16.15    extension       1079       0        6  1m40s",
        "17     17.11    extension       1078       1        6  1m45s",
        "18     18.6     extension       1079       0        6  1m52s",
        "15     15.14    no-extension    1081       0        4    10s",
        "total                           6475       1       34  9m07s",
    ]


def test_progress_is_streamed_live_and_counts_come_from_pytest(tmp_path, pytestconfig):
    """Each run prints a header and pytest's own progress as it happens (the
    first test's dot arrives while the second is still running), then the table."""
    (tmp_path / "test_slow.py").write_text(
        "import time\n"
        "def test_quick(): pass\n"
        "def test_slow(): time.sleep(2)\n"
        "def test_skipped():\n    import pytest; pytest.skip('no')\n"
        "def test_failing(): assert False\n")
    pg_config = pytestconfig.getoption("--history-track-pg-config") or "/usr/lib/postgresql/15/bin/pg_config"
    major = subprocess.run([pg_config, "--version"], capture_output=True, text=True,
                           check=True).stdout.split()[1].split(".")[0]
    env = {**os.environ, f"PG_CONFIG_{major}": pg_config}
    # --no-lint: the runs alone (tests/test_lint.py tests the lint step).
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "all_majors.py"), "--no-lint", major, "--",
                             str(tmp_path / "test_slow.py")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    chunks: list[tuple[float, bytes]] = []

    def read() -> None:
        assert proc.stdout is not None
        while chunk := os.read(proc.stdout.fileno(), 4096):
            chunks.append((time.monotonic(), chunk))

    reader = threading.Thread(target=read)
    reader.start()
    assert proc.wait(timeout=120) == 1          # a test failed
    reader.join()
    out = b"".join(c for _, c in chunks).decode()
    # The first dot of the first run came before the slow test finished.
    first_dot = next(t for t, c in chunks if c.startswith(b"."))
    first_run_done = next(t for t, c in chunks if b"passed" in c)
    assert first_run_done - first_dot > 1.5
    lines = out.splitlines()
    headers = [line for line in lines if line.startswith("===== [")]
    assert [h.split(",")[1].split()[0] for h in headers] == ["extension", "no-extension"]
    assert headers[0].startswith(f"===== [1/2] PostgreSQL {major}.")
    table = lines[lines.index("===== summary =====") + 1:]
    assert table[0].split() == ["major", "version", "install", "passed", "failed", "skipped", "time"]
    assert [row.split()[2:6] for row in table[2:4]] == [["extension", "2", "1", "1"], ["no-extension", "2", "1", "1"]]
    assert table[4].split()[:4] == ["total", "4", "2", "2"]
    assert len({len(row) for row in table[:5]}) == 1
    assert table[-1] == "2 failed"
