"""The README's tour works as written: doc/tour.sql, run verbatim through psql,
prints exactly doc/tour.out, and README.md shows the same statements (only
statements in its ```sql blocks) and the outputs they print (in ```text blocks).

After a change of behaviour: python3 tools/tour.py --update, and read the diff.
"""

from __future__ import annotations

import difflib
import importlib.util
import sys

from conftest import ROOT

spec = importlib.util.spec_from_file_location("tour", ROOT / "tools" / "tour.py")
assert spec is not None and spec.loader is not None
tour = importlib.util.module_from_spec(spec)
sys.modules["tour"] = tour
spec.loader.exec_module(tour)

SCRIPT = (ROOT / "doc" / "tour.sql").read_text()
EXPECTED = (ROOT / "doc" / "tour.out").read_text()


def test_the_tour_prints_what_doc_tour_out_says(history_track_server, history_track_dsn):
    transcript = tour.run(history_track_dsn, tour.psql_for(history_track_server.installation.bindir))
    assert "ERROR:" not in transcript, transcript
    diff = "\n".join(difflib.unified_diff(EXPECTED.splitlines(), transcript.splitlines(), "doc/tour.out", "now",
                                          lineterm=""))
    assert transcript == EXPECTED, f"python3 tools/tour.py --update refreshes it:\n{diff}"


def test_the_readme_shows_the_tours_statements_and_their_outputs():
    readme = (ROOT / "README.md").read_text()
    fenced = tour.readme_blocks(readme)
    # Statements only in ```sql blocks, and exactly the script's blocks, in order.
    assert [text for language, text in fenced if language == "sql"] == tour.blocks(SCRIPT)
    # Every output is a ```text block right after a tour block, showing what
    # that block's last statement prints.
    shown = dict(zip(tour.blocks(SCRIPT), tour.outputs(SCRIPT, EXPECTED)))
    previous = None
    texts = 0
    for language, text in fenced:
        assert language in ("sql", "text", "sh", "python"), language
        if language == "text":
            assert previous is not None, "an output block before any statement"
            assert text == shown[previous], f"python3 tools/tour.py --update refreshes it:\n{text}"
            texts += 1
        previous = text if language == "sql" else None
    assert texts >= 5
    # Nothing in the sql blocks is psql output (what the old README had: a result table).
    assert not any(line.startswith(("---", "(")) or " | " in line
                   for language, text in fenced if language == "sql" for line in text.splitlines())


def test_outputs_are_taken_from_the_transcript_by_statement():
    script = "-- header\n\nSELECT 1;\nSELECT 2\n  + 3;\n\nUPDATE t SET a = 1;\n"
    transcript = ("-- header\nSELECT 1;\n ?column?\n----------\n        1\n(1 row)\n\nSELECT 2\n  + 3;\n"
                  " ?column?\n----------\n        5\n(1 row)\n\nUPDATE t SET a = 1;\nUPDATE 1\n")
    assert tour.blocks(script) == ["SELECT 1;\nSELECT 2\n  + 3;", "UPDATE t SET a = 1;"]
    assert tour.outputs(script, transcript) == [" ?column?\n----------\n        5\n(1 row)", "UPDATE 1"]
