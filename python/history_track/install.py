"""Installing history_track: the extension's files into a PostgreSQL installation,
and CREATE EXTENSION into a database."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
from psycopg import sql

from ._resources import EXTENSION, extension_files
from .server import Installation


class InstallError(RuntimeError):
    """The extension's files could not be installed."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def install_files(pg_config: str | os.PathLike[str] | None = None) -> list[Path]:
    """Write the control file, install script and upgrade scripts into the
    ``share/extension`` directory of the installation ``pg_config`` belongs to.
    Returns the files written."""
    inst = Installation.find(pg_config)
    extdir = inst.sharedir / "extension"
    if not os.access(extdir, os.W_OK):
        raise InstallError(
            f"cannot write to {extdir}",
            hint="run the command with sudo, or as the owner of the PostgreSQL installation",
        )
    written = []
    for name, text in extension_files().files().items():
        path = extdir / name
        path.write_text(text)
        written.append(path)
    return written


def create_extension(conn: psycopg.Connection, schema: str | None = None) -> str:
    """CREATE EXTENSION IF NOT EXISTS history_track (in ``schema`` if given);
    returns the installed version."""
    query = sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(EXTENSION))
    if schema is not None:
        query = query + sql.SQL(" SCHEMA {}").format(sql.Identifier(schema))
    conn.execute(query)
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = %s", [EXTENSION]).fetchone()
    assert row is not None
    return str(row[0])
