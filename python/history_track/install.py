"""Installing history_track: the extension's files into a PostgreSQL installation,
and CREATE EXTENSION into a database."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from ._resources import EXTENSION, extension_files, statements
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


# -- without the extension mechanism ----------------------------------------------
#
# Managed PostgreSQL services (RDS, Cloud SQL, Azure, ...) do not let you put
# files into share/extension. install_without_extension() runs the very same
# install script as plain SQL: @extschema@ becomes the chosen schema, the
# pg_extension_config_dump() registrations (which only mean something inside
# CREATE EXTENSION) are left out, and the version is kept in
# history_track.installation. Everything is created in one transaction.

_INSTALLATION = "history_track.installation"
_API_OBJECT = re.compile(r"^CREATE (FUNCTION|VIEW) @extschema@\.(\w+)", re.M)


@dataclass(frozen=True)
class PlainInstall:
    """What install_without_extension() did."""

    version: str
    schema: str
    event_triggers: bool  # False: the role may not create them (see the warning)


def _plain_script(conn: psycopg.Connection[Any], schema: str) -> tuple[str, list[str]]:
    """The install script as plain SQL in ``schema``, and its CREATE EVENT
    TRIGGER statements apart (they need privileges the role may lack)."""
    script: list[str] = []
    event_triggers: list[str] = []
    for stmt in statements(extension_files().install_script):  # (psql's \\echo lines go too)
        if stmt.startswith("SELECT pg_catalog.pg_extension_config_dump("):
            continue
        (event_triggers if stmt.startswith("CREATE EVENT TRIGGER ") else script).append(stmt)
    return "\n".join(script).replace("@extschema@", sql.Identifier(schema).as_string(conn)), event_triggers


def _installed(conn: psycopg.Connection[Any]) -> str | None:
    """'extension', 'plain' or None."""
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = %s", [EXTENSION]).fetchone():
        return "extension"
    if conn.execute("SELECT to_regclass(%s)", [_INSTALLATION]).fetchone()[0] is not None:  # type: ignore[index]
        return "plain"
    if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'history_track'").fetchone():
        return "unknown"
    return None


def install_without_extension(conn: psycopg.Connection[Any], schema: str = "public") -> PlainInstall:
    """Install history_track's API into ``schema`` (and its internals into the
    schema history_track) as plain SQL objects owned by the connected role.
    Refused when history_track is already installed in the database."""
    found = _installed(conn)
    if found is not None:
        raise InstallError(
            f"history_track is already installed in this database ({found})",
            hint="uninstall it first (history-track uninstall --dsn ...)"
            if found != "unknown"
            else "a schema named history_track exists; rename or drop it",
        )
    script, event_triggers = _plain_script(conn, schema)
    with conn.transaction():
        conn.execute(script)  # no parameters: sent as is, all statements in one go
        made = True
        try:
            with conn.transaction():
                for stmt in event_triggers:
                    conn.execute(stmt)
        except psycopg.errors.InsufficientPrivilege:
            made = False
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (version text NOT NULL, schema name NOT NULL, event_triggers boolean NOT NULL,"
                " installed_at timestamptz NOT NULL DEFAULT now())"
            ).format(sql.SQL(_INSTALLATION))
        )
        conn.execute(
            sql.SQL("COMMENT ON TABLE {} IS {}").format(
                sql.SQL(_INSTALLATION),
                sql.Literal("history_track installed without CREATE EXTENSION (history-track install --no-extension)"),
            )
        )
        conn.execute(
            sql.SQL("INSERT INTO {} (version, schema, event_triggers) VALUES (%s, %s, %s)").format(
                sql.SQL(_INSTALLATION)
            ),
            [extension_files().version, schema, made],
        )
        conn.execute(sql.SQL("GRANT SELECT ON {} TO PUBLIC").format(sql.SQL(_INSTALLATION)))
    return PlainInstall(extension_files().version, schema, made)


def uninstall(conn: psycopg.Connection[Any]) -> str:
    """Remove history_track from a database: DROP EXTENSION, or for an install
    without the extension its objects. Event tables are kept. Refused while any
    table is tracked (DROP EXTENSION's own error, or InstallError). Returns what
    was removed ('extension' or 'plain')."""
    found = _installed(conn)
    if found is None:
        raise InstallError("history_track is not installed in this database")
    if found == "unknown":
        raise InstallError(
            "the schema history_track exists but holds no history_track installation",
            hint="it is not ours to drop; rename or drop it yourself",
        )
    with conn.transaction():
        if found == "extension":
            conn.execute(sql.SQL("DROP EXTENSION {}").format(sql.Identifier(EXTENSION)))
            return found
        tracked = conn.execute(
            "SELECT string_agg(DISTINCT table_name::text, ', ') FROM history_track.tracker"
        ).fetchone()[0]  # type: ignore[index]
        if tracked:
            raise InstallError(
                f"cannot uninstall history_track while tables are tracked: {tracked}",
                hint="stop tracking them first: SELECT untrack_table('...')",
            )
        schema = conn.execute(sql.SQL("SELECT schema FROM {}").format(sql.SQL(_INSTALLATION))).fetchone()[0]  # type: ignore[index]
        names = sorted({m.group(2) for m in _API_OBJECT.finditer(extension_files().install_script)})
        with conn.cursor(row_factory=dict_row) as cur:
            for trigger in cur.execute(
                "SELECT evtname FROM pg_event_trigger WHERE evtname LIKE 'history\\_track\\_%'"
            ).fetchall():
                conn.execute(sql.SQL("DROP EVENT TRIGGER {}").format(sql.Identifier(trigger["evtname"])))
            for obj in cur.execute(
                "SELECT p.oid::regprocedure::text AS object, 'FUNCTION' AS kind FROM pg_proc p"
                " WHERE p.pronamespace = %(s)s::regnamespace AND p.proname = ANY(%(n)s)"
                " UNION ALL SELECT c.oid::regclass::text, 'VIEW' FROM pg_class c"
                " WHERE c.relnamespace = %(s)s::regnamespace AND c.relname = ANY(%(n)s) AND c.relkind = 'v'",
                {"s": sql.Identifier(schema).as_string(conn), "n": names},
            ).fetchall():
                conn.execute(sql.SQL("DROP {} {}").format(sql.SQL(obj["kind"]), sql.SQL(obj["object"])))
        conn.execute("DROP SCHEMA history_track CASCADE")
    return found
