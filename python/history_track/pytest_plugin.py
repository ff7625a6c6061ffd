"""pytest plugin (entry point ``history_track``): temporary PostgreSQL with history_track.

Fixtures:

* ``history_track_server`` (session): a :class:`TemporaryServer`; choose the
  PostgreSQL with ``--history-track-pg-config`` or $PG_CONFIG.
  ``--history-track-install=no-extension`` (or $HISTORY_TRACK_INSTALL) installs
  history_track into the databases without CREATE EXTENSION, as
  ``history-track install --no-extension`` does on managed PostgreSQL.
* ``history_track_dsn`` (function): a fresh database, with the extension
  created, cloned from a template in milliseconds; its connection string.
* ``history_track_conn`` (function): an autocommit psycopg connection to it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from .install import create_extension, install_without_extension
from .server import TemporaryServer

_TEMPLATE = "history_track_template"
_counter = itertools.count(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--history-track-pg-config",
        default=None,
        help="pg_config of the PostgreSQL the history_track fixtures start (default: $PG_CONFIG or PATH)",
    )
    parser.addoption(
        "--history-track-install",
        choices=["extension", "no-extension"],
        default=os.environ.get("HISTORY_TRACK_INSTALL", "extension"),
        help="how the fixtures' databases get history_track: CREATE EXTENSION (default) or"
        " the same SQL without the extension mechanism ($HISTORY_TRACK_INSTALL)",
    )


def install_mode(config: pytest.Config) -> str:
    """'extension' or 'no-extension': how the fixtures install history_track."""
    return str(config.getoption("--history-track-install"))


@pytest.fixture(scope="session")
def history_track_server(request: pytest.FixtureRequest) -> Iterator[TemporaryServer]:
    server = TemporaryServer(pg_config=request.config.getoption("--history-track-pg-config"))
    try:
        with psycopg.connect(server.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(_TEMPLATE)))
        with psycopg.connect(server.conninfo(_TEMPLATE), autocommit=True) as conn:
            if install_mode(request.config) == "no-extension":
                install_without_extension(conn)
            else:
                create_extension(conn)
        yield server
    finally:
        server.stop()


@pytest.fixture
def history_track_dsn(history_track_server: TemporaryServer) -> Iterator[str]:
    name = f"test_{next(_counter)}"
    with psycopg.connect(history_track_server.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(_TEMPLATE)))
    yield history_track_server.conninfo(name)
    with psycopg.connect(history_track_server.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def history_track_conn(history_track_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(history_track_dsn, autocommit=True) as conn:
        yield conn
