"""What the package depends on: production gets psycopg and nothing else (the
demo and the sandbox included); the tests' dependencies are an extra, pinned
to tested releases by python/constraints-test.txt."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import pytest
from conftest import ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    tomllib = None  # type: ignore[assignment]

RUNTIME = ["psycopg[binary]>=3.1"]


def _pyproject() -> dict:
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    return tomllib.loads((ROOT / "python" / "pyproject.toml").read_text())["project"]


def test_runtime_dependencies_are_psycopg_only():
    assert _pyproject()["dependencies"] == RUNTIME
    # The installed package says the same (reinstall ./python after editing pyproject.toml).
    installed = [r.replace(" ", "") for r in metadata.requires("history-track") or [] if "extra ==" not in r]
    assert installed == RUNTIME


def test_demo_runs_with_nothing_but_psycopg(tmp_path):
    """The demo (a temporary server, the extension, a story, its history) in a
    Python that sees the standard library, psycopg and this package only."""
    site = Path(__import__("psycopg").__file__).resolve().parent.parent
    libs = Path(tempfile.mkdtemp(prefix="ht_runtime_"))
    try:
        for entry in site.iterdir():
            if entry.name.lower().startswith(("psycopg", "typing_extensions")):
                (libs / entry.name).symlink_to(entry)
        env = {**os.environ, "PYTHONPATH": f"{libs}:{ROOT / 'python'}", "HISTORY_TRACK_SOURCE": str(ROOT)}
        code = ("import sys; from history_track.cli import main; rc = main(['demo']);"
                " print(sorted({m.split('.')[0] for m in sys.modules} & {'testing', 'pg8000', 'pytest', 'django'}));"
                " sys.exit(rc)")
        # -S: no site-packages, so nothing installed there can be imported.
        proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env,
                              timeout=120, cwd=tmp_path, check=False)
    finally:
        for entry in libs.iterdir():
            entry.unlink()
        libs.rmdir()
    assert proc.returncode == 0, proc.stderr
    assert "the temporary server and its files are gone" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "[]"


# -- the test extra's pins -------------------------------------------------------------

# tools/test_deps.py points this at the pins it is trying out.
CONSTRAINTS = Path(os.environ.get("HISTORY_TRACK_CONSTRAINTS", ROOT / "python" / "constraints-test.txt"))
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][0-9A-Za-z.+!-]*)$")


def _pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = PIN.match(line)
            assert match, f"not an exact pin: {line!r}"
            pins[_canonical(match.group(1))] = match.group(2)
    return pins


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure() -> dict[str, str]:
    """Every distribution `pip install './python[test]'` installs, with the
    installed version: history-track's requirements with the test extra,
    followed through the installed packages' own requirements."""
    from packaging.requirements import Requirement

    found: dict[str, str] = {}
    walked: dict[str, set[str]] = {}   # distribution -> extras followed ("" is the package itself)

    def walk(name: str, extras: set[str]) -> None:
        dist = metadata.distribution(name)
        key = _canonical(dist.metadata["Name"])
        found[key] = dist.version
        new = (extras | {""}) - walked.get(key, set())   # celery[redis] needs kombu[redis] after kombu
        if not new:
            return
        walked.setdefault(key, set()).update(new)
        for text in dist.requires or []:
            req = Requirement(text)
            if "" in new if req.marker is None else any(req.marker.evaluate({"extra": e}) for e in new):
                walk(req.name, set(req.extras))

    walk("history-track", {"test"})
    del found["history-track"]
    return found


def test_the_test_extra_is_pinned_exactly_and_completely():
    """python/constraints-test.txt pins every package the test extra brings
    (transitively) to one release, each within the extra's own bounds; the
    README's test command (what CI runs) installs with it."""
    from packaging.requirements import Requirement

    pins = _pins()
    closure = _closure()
    assert sorted(pins) == sorted(closure), "refresh the pins: python3 tools/test_deps.py --update"
    extra = [Requirement(r) for r in _pyproject()["optional-dependencies"]["test"] + RUNTIME]
    for req in extra:
        assert req.specifier.contains(pins[_canonical(req.name)], prereleases=True), req
    readme = (ROOT / "README.md").read_text()
    assert "python3 -m pip install -c python/constraints-test.txt './python[test]' && python3 tools/all_majors.py" \
        in readme
