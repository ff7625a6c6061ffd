#!/usr/bin/env python3
"""The README's tour, doc/tour.sql: run it, and refresh what it is checked against.

    python3 tools/tour.py             # run it on a temporary server; show how it differs from doc/tour.out
    python3 tools/tour.py --update    # write doc/tour.out, and the outputs README.md shows
    python3 tools/tour.py --pg-config /usr/lib/postgresql/17/bin/pg_config

The tour runs verbatim through psql -X -a (each line echoed, then what it
printed), in a fresh database with history_track created, the way `history-track
sandbox` gives it; the transcript is doc/tour.out (trailing blanks removed).
tests/test_tour.py does the same on the test server and also checks README.md:
its "Five minutes with it" section holds the script's blocks (paragraphs, as
```sql blocks) in order, each optionally followed by a ```text block with what
the block's last statement prints, taken from the transcript.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "doc" / "tour.sql"
EXPECTED = ROOT / "doc" / "tour.out"
README = ROOT / "README.md"
SECTION = "## Five minutes with it"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)


def blocks(script: str) -> list[str]:
    """The script's blocks: its paragraphs (separated by blank lines) that hold
    more than comments."""
    paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", script)]
    return [
        p for p in paragraphs if any(line.strip() and not line.lstrip().startswith("--") for line in p.splitlines())
    ]


def psql_for(bindir: Path | None) -> str:
    """psql of the server's installation, else the one on PATH."""
    if bindir is not None and (bindir / "psql").exists():
        return str(bindir / "psql")
    found = shutil.which("psql")
    if found is None:
        raise SystemExit("psql was not found (Debian: apt-get install postgresql-client)")
    return found


def run(dsn: str, psql: str) -> str:
    """The transcript: psql -X -a on the script, stdout and stderr together,
    trailing blanks removed from every line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LC_", "PSQL"))}
    env.update(LC_ALL="C", PGTZ="UTC", PGDATESTYLE="ISO, YMD")
    proc = subprocess.run(
        [psql, "-X", "-a", "-P", "pager=off", "-f", str(SCRIPT), dsn],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    return "".join(line.rstrip() + "\n" for line in proc.stdout.splitlines())


def outputs(script: str, transcript: str) -> list[str]:
    """What the last statement of each block printed, from the transcript
    (psql -a echoes every line but blank ones, output follows its statement)."""
    echoed = [line.rstrip() for line in script.splitlines() if line.strip()]
    after: dict[int, list[str]] = {}  # index of an echoed line -> what followed it
    i = -1
    for line in transcript.splitlines():
        if i + 1 < len(echoed) and line == echoed[i + 1]:
            i += 1
            after[i] = []
        elif i >= 0:
            after[i].append(line)
    if i + 1 != len(echoed):
        raise ValueError(f"the transcript stops before line {echoed[i + 1]!r} of the script")
    result, n = [], -1
    for block in blocks(script):
        n = echoed.index(block.splitlines()[-1].rstrip(), n + 1)
        result.append("\n".join(after[n]).strip("\n"))
    return result


def readme_tour(readme: str) -> tuple[int, int]:
    """Where the tour section of README.md starts and ends."""
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    return start, len(readme) if end < 0 else end


def readme_blocks(readme: str) -> list[tuple[str, str]]:
    """The fenced blocks of the tour section: (language, text)."""
    start, end = readme_tour(readme)
    return [(m.group(1), m.group(2).rstrip("\n")) for m in FENCE.finditer(readme[start:end])]


def updated_readme(readme: str, script: str, transcript: str) -> str:
    """README.md with each ```text block after a tour block replaced by what
    that block's last statement prints now."""
    shown = dict(zip(blocks(script), outputs(script, transcript)))
    start, end = readme_tour(readme)
    section, previous = readme[start:end], None

    def replace(match: re.Match[str]) -> str:
        nonlocal previous
        language, text = match.group(1), match.group(2).rstrip("\n")
        if language == "sql":
            previous = text
        elif language == "text" and previous in shown:
            return f"```text\n{shown[previous]}\n```\n"
        return match.group(0)

    return readme[:start] + FENCE.sub(replace, section) + readme[end:]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help="write doc/tour.out and README.md's outputs")
    parser.add_argument("--pg-config", help="pg_config of the PostgreSQL to use (default: on PATH)")
    args = parser.parse_args(argv)

    os.environ["HISTORY_TRACK_SOURCE"] = str(ROOT)  # this tree's SQL, as the tests use
    sys.path.insert(0, str(ROOT / "python"))
    import psycopg

    from history_track.install import create_extension
    from history_track.server import TemporaryServer

    with TemporaryServer(pg_config=args.pg_config, database="sandbox") as server:
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            create_extension(conn)
        transcript = run(server.conninfo(), psql_for(server.installation.bindir))
    script = SCRIPT.read_text()
    if args.update:
        EXPECTED.write_text(transcript)
        README.write_text(updated_readme(README.read_text(), script, transcript))
        print(f"wrote {EXPECTED.relative_to(ROOT)} and the tour's outputs in README.md")
        return 0
    old = EXPECTED.read_text() if EXPECTED.exists() else ""
    diff = list(difflib.unified_diff(old.splitlines(), transcript.splitlines(), "doc/tour.out", "now", lineterm=""))
    print("\n".join(diff) if diff else "the tour prints what doc/tour.out says")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
