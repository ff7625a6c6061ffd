"""The version is written once (the control file); META.json, the Makefile and
the Python package agree with it, and the package ships the same SQL."""

from __future__ import annotations

import json
import re
import subprocess
from importlib import metadata, resources

import history_track
from conftest import ROOT
from history_track import _resources

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$")


def control_version() -> str:
    return _resources.control_version((ROOT / "history_track.control").read_text())


def test_meta_json_is_a_pgxn_1_0_0_document_that_agrees_with_the_control_file():
    meta = json.loads((ROOT / "META.json").read_text())
    for key in ("name", "abstract", "version", "maintainer", "license", "provides", "meta-spec"):
        assert key in meta, key
    assert meta["meta-spec"]["version"] == "1.0.0"
    assert meta["name"] == "history_track"
    assert SEMVER.match(meta["version"])
    assert meta["version"] == control_version()
    provided = meta["provides"]["history_track"]
    assert provided["version"] == control_version()
    assert (ROOT / provided["file"]).is_file()
    assert (ROOT / provided["docfile"]).is_file()
    assert meta["prereqs"]["runtime"]["requires"]["PostgreSQL"] == "14.0.0"


def test_python_package_version_is_the_extension_version():
    assert history_track.__version__ == control_version()
    assert metadata.version("history-track") == control_version()


def test_makefile_reads_the_version_from_the_control_file():
    out = subprocess.run(["make", "-s", "version"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == control_version()


def test_installed_package_ships_the_repository_sql():
    """The installed package's SQL is the repository's src/ (reinstall ./python after editing src/)."""
    shipped = resources.files("history_track") / "extension"
    names = sorted(e.name for e in shipped.iterdir() if e.name.endswith(".sql"))
    assert names == sorted(p.name for p in (ROOT / "src").glob("*.sql"))
    for name in names:
        assert (shipped / name).read_text() == (ROOT / "src" / name).read_text(), name


def test_ci_runs_the_readmes_two_commands():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    demo, suite = blocks[0], blocks[1]
    assert "history-track demo" in demo and "all_majors.py" in suite
    assert readme.index(demo) < readme.index("## Five minutes")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert demo in ci and suite in ci


def test_makefile_refuses_unsupported_majors(tmp_path):
    fake = tmp_path / "pg_config"
    fake.write_text("#!/bin/sh\necho 'PostgreSQL 13.16'\n")
    fake.chmod(0o755)
    proc = subprocess.run(["make", "-s", f"PG_CONFIG={fake}"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0
    assert 'history_track supports PostgreSQL 14 15 16 17 18; ' in proc.stderr
    assert 'belongs to PostgreSQL "13"' in proc.stderr
