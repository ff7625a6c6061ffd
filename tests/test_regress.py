"""The pg_regress suite (sql/ and expected/), run with `make installcheck`
against the session's temporary server."""

from __future__ import annotations

import os
import subprocess

from conftest import ROOT


def test_pg_regress_suite(history_track_server):
    env = {**os.environ, **history_track_server.environ()}
    proc = subprocess.run(
        ["make", "-s", "installcheck", f"PG_CONFIG={history_track_server.installation.pg_config}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    diffs = ROOT / "regression.diffs"
    detail = diffs.read_text() if diffs.exists() else ""
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}\n{detail}"
    assert "tests passed" in proc.stdout, proc.stdout
