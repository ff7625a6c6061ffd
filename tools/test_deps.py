#!/usr/bin/env python3
"""Try the newest releases of the test dependencies, and refresh the pins.

The test command of the README (what CI runs) installs the test extra with
python/constraints-test.txt: exact releases of every package
`pip install './python[test]'` brings, as last tested, so a new pytest or
Django cannot break a run nobody changed. This tool moves the pins forward:

    python3 tools/test_deps.py                  # newest releases: what changed, and the suite on them
    python3 tools/test_deps.py --update         # ... and when the suite passed, write the new pins
    python3 tools/test_deps.py 14 18 -- -k ctx  # other majors / pytest arguments (as all_majors.py)

It makes a scratch virtualenv, installs './python[test]' there without the
pins (pip's own configuration still applies), lists each package whose
newest release differs from its pin, and runs tools/all_majors.py in that
environment (default: the majors this machine has, else 15). Nothing is
installed into the Python running this tool; the virtualenv is removed.
Run it before a release, or whenever a dependency announces one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "python" / "constraints-test.txt"
HEADER = """\
# Exact releases of everything `pip install './python[test]'` installs, as last
# tested: the README's test command (what CI runs) installs with `-c` this file.
# Try newer releases and refresh: python3 tools/test_deps.py [--update]
"""


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip()] = version.strip()
    return pins


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def newest(venv: Path) -> dict[str, str]:
    """Install './python[test]' into the virtualenv, unpinned; what pip put there."""
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "-qq", "--disable-pip-version-check", "./python[test]"], cwd=ROOT, check=True
    )
    frozen = subprocess.run(
        [python, "-m", "pip", "freeze", "--exclude", "history-track"], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split("==", 1) for line in frozen.splitlines() if "==" in line)


def changes(old: dict[str, str], new: dict[str, str]) -> list[str]:
    by_name = {canonical(n): (n, v) for n, v in old.items()}
    lines = []
    for name, version in sorted(new.items(), key=lambda kv: canonical(kv[0])):
        before = by_name.pop(canonical(name), (name, None))[1]
        if before != version:
            lines.append(f"  {name:<24} {before or '(new)':>14} -> {version}")
    lines += [f"  {name:<24} {version:>14} -> (no longer needed)" for name, version in by_name.values()]
    return lines


def main(argv: list[str]) -> int:
    update = "--update" in argv
    argv = [a for a in argv if a != "--update"]
    if "--" not in argv:
        argv = [*argv, "--"]
    majors, extra = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    if not majors:
        majors = [
            m
            for m in ("14", "15", "16", "17", "18")
            if os.environ.get(f"PG_CONFIG_{m}") or Path(f"/usr/lib/postgresql/{m}/bin/pg_config").exists()
        ]
        majors = majors or ["15"]

    scratch = Path(tempfile.mkdtemp(prefix="history_track_deps_"))
    os.chmod(scratch, 0o755)  # as root, the tests run Python as the server's OS user from here
    try:
        venv = scratch / "venv"
        print(f"virtualenv {venv}: installing './python[test]' with the newest releases ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pins = newest(venv)
        diff = changes(read_pins(CONSTRAINTS), pins)
        print("\n".join(["newer than the pins:", *diff]) if diff else "the pins are the newest releases")
        candidate = scratch / "constraints-test.txt"
        candidate.write_text(
            HEADER + "".join(f"{n}=={v}\n" for n, v in sorted(pins.items(), key=lambda kv: canonical(kv[0])))
        )
        env = {
            **os.environ,
            "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
            "VIRTUAL_ENV": str(venv),
            "HISTORY_TRACK_CONSTRAINTS": str(candidate),
        }
        env.pop("PYTHONPATH", None)
        print(f"\nthe suite on them: tools/all_majors.py {' '.join(majors)}", flush=True)
        passed = (
            subprocess.run(
                [str(venv / "bin" / "python"), str(ROOT / "tools" / "all_majors.py"), *majors, "--", *extra],
                cwd=ROOT,
                env=env,
                check=False,
            ).returncode
            == 0
        )
        if not passed:
            print("\nthe suite failed on the newest releases: pins left as they are (fix, then run again)")
            return 1
        if update and diff:
            shutil.copyfile(candidate, CONSTRAINTS)
            print(f"\nwrote {CONSTRAINTS.relative_to(ROOT)}; commit it with the fixes it needed")
        elif diff:
            print("\nthe suite passed on the newest releases: --update writes the new pins")
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
