"""Test configuration: always test this working tree's SQL.

The fixtures come from the package's pytest plugin (history_track.pytest_plugin,
registered as an entry point): a temporary server per session, a fresh database
with the extension per test.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ["HISTORY_TRACK_SOURCE"] = str(ROOT)
# What history_track generates for a tracked table is named _t<table id>_<suffix>
# (history_track._generated_name): a proname pattern for the tests that look for it.
GENERATED = "^_t[0-9]+_"


@pytest.fixture
def conn(history_track_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """An autocommit connection, as superuser, to a fresh database with history_track."""
    return history_track_conn


def rows(conn: psycopg.Connection[Any], query: str, params: Any = None) -> list[tuple[Any, ...]]:
    return conn.execute(query, params).fetchall()


def catalog_snapshot(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Everything a refused call must not have changed."""
    return {
        "relations": rows(conn, "SELECT oid::regclass::text FROM pg_class WHERE relnamespace NOT IN "
                                "('pg_catalog'::regnamespace, 'information_schema'::regnamespace, "
                                "'pg_toast'::regnamespace) ORDER BY 1"),
        "functions": rows(conn, "SELECT oid::regprocedure::text FROM pg_proc "
                                "WHERE pronamespace = 'history_track'::regnamespace ORDER BY 1"),
        "triggers": rows(conn, "SELECT tgrelid::regclass::text, tgname FROM pg_trigger "
                               "WHERE NOT tgisinternal ORDER BY 1, 2"),
        "tracked": rows(conn, "SELECT table_name::text, event_table::text FROM history_track.tracked_table ORDER BY 1"),
        "trackers": rows(conn, "SELECT table_name::text, label FROM history_track.tracker ORDER BY 1, 2"),
    }
