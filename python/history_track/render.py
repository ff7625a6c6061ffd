"""Terminal rendering of history: a timeline of events with their diffs.

Colour only when asked or when the output is a terminal (and ``NO_COLOR`` is
not set); long output on a terminal goes through a pager; ``--json`` gives
scripts the events as a JSON array.
"""

from __future__ import annotations

import decimal
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import IO, Any

from .api import Event

RESET, DIM, BOLD, RED, GREEN, YELLOW, CYAN = (
    "\033[0m",
    "\033[2m",
    "\033[1m",
    "\033[31m",
    "\033[32m",
    "\033[33m",
    "\033[36m",
)
OPERATION_COLOURS = {
    "INSERT": GREEN,
    "UPDATE": YELLOW,
    "DELETE": RED,
    "TRUNCATE": RED,
    "MANUAL": CYAN,
    "BASELINE": CYAN,
}


def use_colour(choice: str, stream: IO[str]) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return stream.isatty()


# What a terminal acts on instead of showing, or shows other than it is:
# control characters (C0, DEL and C1: escape sequences, carriage return, bell),
# format characters (bidirectional overrides and isolates, zero-width ones),
# line and paragraph separators. Every text from the database (a value, a
# column, table or schema name, a label, a context, an error message) passes
# printable() before it is shown: whoever wrote it (a table's owner, a writer)
# cannot move the cursor, erase or conceal lines, forge an event, reorder what
# a line shows or write the reader's clipboard.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _escape(ch: str) -> str:
    """ch as JSON escapes it: \\u and four hex digits; a character beyond U+FFFF
    as its UTF-16 surrogate pair, which JSON reads back as that character."""
    code = ord(ch)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def printable(text: str, keep: str = "") -> str:
    """text with every character a terminal would not show as itself written as
    a JSON escape (ESC as \\u001b), except those in ``keep``."""
    if text.isprintable():  # the usual case: nothing to look at character by character
        return text
    return "".join(
        _escape(ch) if ch not in keep and unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in text
    )


def value(v: Any) -> str:
    """A value as JSON for the terminal; numbers read as Decimal print as stored (25.00)."""
    if isinstance(v, decimal.Decimal):
        return str(v)
    return printable(json.dumps(v, sort_keys=True, default=str, ensure_ascii=False))


def timeline(events: Sequence[Event], colour: bool, show_table: bool = False) -> list[str]:
    """One block per event: a header line (id, time, operation, label, key, who), then
    one line per changed column, old value in red, new in green. With
    ``show_table`` (events of several tables), the header starts with the
    event's table, in a column of its own (each table numbers its events)."""

    def c(code: str, text: str) -> str:
        return f"{code}{text}{RESET}" if colour else text

    width = max((len(printable(e.table_name)) for e in events), default=0)
    id_width = max((len(str(e.id)) for e in events), default=0) + 1
    lines: list[str] = []
    for e in events:
        op = c(OPERATION_COLOURS.get(e.operation, ""), f"{printable(e.operation):<8}")
        label = "" if e.label.lower() == e.operation.lower() else f" {c(BOLD, printable(e.label))}"
        where = f"{c(BOLD, printable(e.table_name).ljust(width))} " if show_table else ""
        who = f"  {c(DIM, value(e.context))}" if e.context else ""
        when = (
            e.created_at.strftime("%Y-%m-%d %H:%M:%S")
            if isinstance(e.created_at, datetime)
            else printable(str(e.created_at))
        )
        lines.append(f"{where}{c(DIM, f'#{e.id}'.ljust(id_width))} {when} {op}{label} {value(e.obj_id)}{who}")
        if e.diff is None:
            lines.append(f"    {c(DIM, '(stores the row before the change)')}")
            continue
        for column in sorted(e.diff):
            old, new = e.diff[column]
            name = printable(column)
            if e.operation in ("INSERT", "BASELINE") or (old is None and new is not None and e.operation != "UPDATE"):
                lines.append(f"    {name}: {c(GREEN, value(new))}")
            elif e.operation in ("DELETE", "TRUNCATE"):
                lines.append(f"    {name}: {c(RED, value(old))}")
            else:
                lines.append(f"    {name}: {c(RED, value(old))} -> {c(GREEN, value(new))}")
    return lines


# A Decimal is written as the JSON number it was read from (12.50, not "12.50"
# or 12.5): json.dumps cannot write a number it does not know, so it writes a
# marked string that is then unquoted. The marker holds NUL, which no string
# from PostgreSQL contains (jsonb and text refuse it).
_NUMBER = re.compile(r'"\\u0000([^"\\]*)\\u0000"')


def _json_default(o: Any) -> Any:
    if isinstance(o, decimal.Decimal) and o.is_finite():
        return f"\0{o}\0"
    return str(o)


def as_json(events: Sequence[Event]) -> str:
    text = json.dumps(
        [
            {
                "table": e.table_name,
                "pgh_id": e.id,
                "pgh_created_at": e.created_at,
                "pgh_label": e.label,
                "pgh_operation": e.operation,
                "pgh_obj_id": e.obj_id,
                "pgh_context_id": e.context_id,
                "pgh_context": e.context,
                "data": e.data,
                "diff": e.diff,
            }
            for e in events
        ],
        default=_json_default,
        indent=2,
        ensure_ascii=False,
    )
    # (json.dumps escapes C0 characters in strings, not DEL, C1 or format
    # characters; escaped by printable(), the JSON still reads as the same strings.)
    return printable(_NUMBER.sub(r"\1", text), keep="\n")


def page(lines: list[str], stream: IO[str] = sys.stdout) -> None:
    """Print, through $PAGER (less) when the lines do not fit the terminal."""
    text = "\n".join(lines) + ("\n" if lines else "")
    height = shutil.get_terminal_size((80, 24)).lines
    if stream.isatty() and len(lines) > height - 1:
        pager = os.environ.get("PAGER") or "less -FRX"
        try:
            subprocess.run(pager, shell=True, input=text, text=True, check=False)
            return
        except OSError:
            pass
    stream.write(text)


class Progress:
    """Shows that something long is running: after ``delay`` seconds, a spinner
    with the elapsed time on ``stream`` (stderr), redrawn in place, and a last
    line with the total when it ends. Only on a terminal; silent otherwise
    (and for anything quicker than ``delay``). The database cannot say how far
    one statement has got, so this tells the time, not a fraction."""

    FRAMES = "|/-\\"

    def __init__(
        self,
        label: str,
        stream: IO[str] | None = None,
        *,
        delay: float = 0.5,
        interval: float = 0.2,
        force: bool = False,
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.delay = delay
        self.interval = interval
        self.enabled = force or self.stream.isatty()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = False
        self._started = 0.0

    def _run(self) -> None:
        if self._done.wait(self.delay):
            return
        frame = 0
        while not self._done.is_set():
            elapsed = time.monotonic() - self._started
            self.stream.write(f"\r{self.FRAMES[frame % 4]} {self.label} {elapsed:.1f}s")
            self.stream.flush()
            self._shown = True
            frame += 1
            self._done.wait(self.interval)

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        if self.enabled:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if self._shown:
            outcome = "failed after" if exc[0] is not None else "done in"
            self.stream.write(f"\r{self.label}: {outcome} {time.monotonic() - self._started:.1f}s\033[K\n")
            self.stream.flush()
