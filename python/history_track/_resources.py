"""The extension's files, as shipped in this package (or read from a source tree).

The SQL is never re-typed in Python: the package carries the repository's
``src/*.sql`` and ``history_track.control`` and builds the install script the
same way the Makefile does (the files concatenated in name order).

Setting ``HISTORY_TRACK_SOURCE`` to a checkout of the repository makes every
helper use that tree instead of the installed copy (the test suite does this,
so it always tests the working tree).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

EXTENSION = "history_track"


@dataclass(frozen=True)
class ExtensionFiles:
    """What goes into a PostgreSQL installation's ``share/extension`` directory."""

    version: str
    control: str
    install_script: str
    upgrade_scripts: dict[str, str]

    def files(self) -> dict[str, str]:
        """File name -> content, ready to be written into ``share/extension``."""
        out = {
            f"{EXTENSION}.control": self.control,
            f"{EXTENSION}--{self.version}.sql": self.install_script,
        }
        out.update(self.upgrade_scripts)
        return out


def _source_tree() -> Path | None:
    root = os.environ.get("HISTORY_TRACK_SOURCE")
    return Path(root) if root else None


def _read_control() -> str:
    tree = _source_tree()
    if tree is not None:
        return (tree / f"{EXTENSION}.control").read_text()
    return (resources.files(__package__) / f"{EXTENSION}.control").read_text()


# A control file's default_version: the one place it is read (python/setup.py,
# tools/ and the tests use control_version() too).
_DEFAULT_VERSION = re.compile(r"^default_version\s*=\s*'([^']+)'", re.M)


def control_version(control: str) -> str:
    """The ``default_version`` the text of a control file gives."""
    match = _DEFAULT_VERSION.search(control)
    if match is None:  # pragma: no cover - the control file is ours
        raise RuntimeError("history_track.control has no default_version")
    return match.group(1)


def version() -> str:
    """The extension version, from the control file's ``default_version``."""
    return control_version(_read_control())


def _sql_sources() -> list[tuple[str, str]]:
    tree = _source_tree()
    if tree is not None:
        paths = sorted((tree / "src").glob("*.sql"))
        return [(p.name, p.read_text()) for p in paths]
    folder = resources.files(__package__) / "extension"
    entries = sorted((e for e in folder.iterdir() if e.name.endswith(".sql")), key=lambda e: e.name)
    return [(e.name, e.read_text()) for e in entries]


def _upgrade_scripts() -> dict[str, str]:
    tree = _source_tree()
    if tree is not None:
        folder = tree / "upgrade"
        if not folder.is_dir():
            return {}
        return {p.name: p.read_text() for p in sorted(folder.glob(f"{EXTENSION}--*.sql"))}
    shipped = resources.files(__package__) / "upgrade"
    if not shipped.is_dir():
        return {}
    return {e.name: e.read_text() for e in shipped.iterdir() if e.name.endswith(".sql")}


def extension_files() -> ExtensionFiles:
    """The control file, the install script and the upgrade scripts."""
    return ExtensionFiles(
        version=version(),
        control=_read_control(),
        install_script="".join(text for _, text in _sql_sources()),
        upgrade_scripts=_upgrade_scripts(),
    )


_DOLLAR_QUOTE = re.compile(r"\$[A-Za-z_]*\$")


def statements(text: str) -> list[str]:
    """Split SQL into statements at top-level semicolons (dollar quotes and
    string literals respected, comments and psql's ``\\echo`` lines dropped).
    Enough for the extension's own scripts (no ``/* */`` comments, no
    ``E''`` strings outside dollar quotes), which are all it is used on:
    install_without_extension() and tools/upgrade_script.py."""
    out: list[str] = []
    buf: list[str] = []
    i, quote = 0, None
    while i < len(text):
        if quote is None:
            if text.startswith("--", i):
                while buf and buf[-1] in (" ", "\t"):  # and the blanks before it
                    buf.pop()
                end = text.find("\n", i)
                i = end if end >= 0 else len(text)
                continue
            m = _DOLLAR_QUOTE.match(text, i)
            if m:
                quote = m.group(0)
                buf.append(quote)
                i += len(quote)
                continue
            if text[i] == "'":
                j = i + 1
                while True:
                    j = text.index("'", j)
                    if text.startswith("''", j):
                        j += 2
                        continue
                    break
                buf.append(text[i : j + 1])
                i = j + 1
                continue
            if text[i] == ";":
                stmt = "".join(buf).strip()
                if stmt:
                    out.append(stmt + ";")
                buf = []
                i += 1
                continue
            if text.startswith("\\echo", i) and (i == 0 or text[i - 1] == "\n"):
                i = text.index("\n", i)
                continue
            buf.append(text[i])
            i += 1
        else:
            j = text.index(quote, i)
            buf.append(text[i : j + len(quote)])
            i = j + len(quote)
            quote = None
    if "".join(buf).strip():
        out.append("".join(buf).strip())
    return out
