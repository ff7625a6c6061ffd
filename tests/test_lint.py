"""The lint step of tools/all_majors.py (what CI runs before the test runs):
ruff and mypy, with the repository's own ruff.toml and mypy.ini, each fail the
run on a finding of its own, and the output says how to reproduce and fix it.
(The repository itself is linted by that step, once per CI run, not here.)"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
from conftest import ROOT

if "all_majors" in sys.modules:
    all_majors = sys.modules["all_majors"]
else:
    spec = importlib.util.spec_from_file_location("all_majors", ROOT / "tools" / "all_majors.py")
    assert spec is not None and spec.loader is not None
    all_majors = importlib.util.module_from_spec(spec)
    sys.modules["all_majors"] = all_majors  # dataclasses look their module up there
    spec.loader.exec_module(all_majors)

# One module each check finds fault with, and only that check.
ONLY = {
    "check": "import os\n\n\ndef double(x: int) -> int:\n    return 2 * x\n",  # F401: os unused
    "format": "def double(x: int) -> str:\n    return 'x' * x\n",  # ruff format writes "x"
    "strict": "def double(x):\n    return 2 * x\n",  # mypy --strict: no annotations
}


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("mypy_cache")


@pytest.fixture(autouse=True)
def _one_mypy_cache(mypy_cache, monkeypatch):
    """mypy analyses the standard library once for all these tests, not once each."""
    monkeypatch.setenv("MYPY_CACHE_DIR", str(mypy_cache))


def _tree(root: Path, module: str) -> None:
    """A copy of the repository's lint configuration around one package module."""
    for name in ("ruff.toml", "mypy.ini"):
        shutil.copy(ROOT / name, root / name)
    package = root / "python" / "history_track"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(module)
    (root / "tools").mkdir()
    (root / "tools" / "tool.py").write_text('"""A tool."""\n')
    (root / "bench").mkdir()


@pytest.mark.parametrize("faulty", sorted(ONLY))
def test_each_check_fails_on_its_own_finding_only(faulty, tmp_path, monkeypatch, capfd):
    _tree(tmp_path, ONLY[faulty])
    monkeypatch.setattr(all_majors, "ROOT", tmp_path)
    failed = {lint.check: all_majors.run_lint(lint).failed for lint in all_majors.LINTS}
    assert failed == {check: int(check == faulty) for check in ONLY}, capfd.readouterr().out


def test_a_finding_fails_the_run_and_the_output_says_how_to_fix_it(tmp_path, monkeypatch, capfd):
    _tree(tmp_path, ONLY["check"])
    monkeypatch.setattr(all_majors, "ROOT", tmp_path)
    assert all_majors.main(["--lint-only"]) == 1
    out = capfd.readouterr().out
    assert "F401" in out  # ruff's own report, passed through
    lines = out.splitlines()
    table = lines[lines.index("===== summary =====") + 1 :]
    assert [row.split()[2:5] for row in table[2:5]] == [["check", "0", "1"], ["format", "1", "0"], ["strict", "1", "0"]]
    assert table[-3:] == [
        "the lint step failed; at the repository root, reproduce and fix with:",
        "    python3 -m ruff check --fix python tools bench   # what --fix cannot fix, by hand",
        "1 failed",
    ]


def test_a_clean_tree_passes(tmp_path, monkeypatch, capfd):
    _tree(tmp_path, "def double(x: int) -> int:\n    return 2 * x\n")
    monkeypatch.setattr(all_majors, "ROOT", tmp_path)
    assert all_majors.main(["--lint-only"]) == 0
    out = capfd.readouterr().out
    assert out.splitlines()[-1] == "all runs passed"
    assert "the lint step failed" not in out
