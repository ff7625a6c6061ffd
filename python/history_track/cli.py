"""The history-track command (also python -m history_track)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import psycopg

from . import api, render
from ._resources import version
from .install import (
    InstallError,
    create_extension,
    install_files,
    install_without_extension,
    uninstall,
)
from .server import ServerError, TemporaryServer


def _print_rows(rows: list[dict[str, Any]], out: Any) -> None:
    if not rows:
        print("(no rows)", file=out)
        return
    headers = list(rows[0])
    cells = [[str(r[h]) for h in headers] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip(), file=out)


DEMO_SETUP = """
CREATE TABLE orders (
    id     integer PRIMARY KEY,
    item   text    NOT NULL,
    amount numeric(10,2) NOT NULL,
    status text    NOT NULL DEFAULT 'new'
);
"""


def cmd_demo(args: argparse.Namespace) -> int:
    out = sys.stdout
    started = time.monotonic()
    print(f"history_track {version()}: starting a temporary PostgreSQL server ...", file=out)
    with TemporaryServer(pg_config=args.pg_config) as server:
        print(f"  PostgreSQL {server.installation.version} on port {server.port}"
              f"{' (running as OS user ' + server.run_as + ')' if server.run_as else ''}", file=out)
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            create_extension(conn)
            conn.execute(DEMO_SETUP)
            event_table = api.track_table(conn, "orders")
            print(f"\nSELECT track_table('orders');  -- events go to {event_table}\n", file=out)
            story = [
                ({"user": "alice", "request": "POST /orders"},
                 ["INSERT INTO orders VALUES (1, 'teapot', 25.00), (2, 'cups', 12.50)"]),
                ({"user": "bob", "request": "POST /orders/1/pay"},
                 ["UPDATE orders SET status = 'paid' WHERE id = 1"]),
                ({"user": "alice", "request": "PATCH /orders/2"},
                 ["UPDATE orders SET amount = 10.00 WHERE id = 2",
                  "UPDATE orders SET status = status"]),
                ({"user": "carol", "request": "DELETE /orders/2"},
                 ["DELETE FROM orders WHERE id = 2"]),
            ]
            before = None
            for context, statements in story:
                with conn.transaction():
                    conn.execute("SELECT set_history_context(%s::jsonb)", [json.dumps(context)])
                    for stmt in statements:
                        conn.execute(stmt)
                        print(f"  [{context['user']:>5}] {stmt}", file=out)
                if before is None:
                    before = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
            print("\nSELECT * FROM history_events();  -- every event, who, and what it changed;"
                  " UPDATE ... SET status = status wrote nothing\n", file=out)
            for line in render.timeline(api.history(conn), render.use_colour(args.color, out)):
                print(line, file=out)
            print("\nSELECT * FROM history_as_of(NULL::orders, <after the first request>);\n", file=out)
            assert before is not None
            _print_rows(api.as_of(conn, "orders", before), out)
    print(f"\nDone in {time.monotonic() - started:.1f}s; the temporary server and its files are gone.",
          file=out)
    return 0


def _connect(args: argparse.Namespace) -> psycopg.Connection[Any]:
    return psycopg.connect(args.dsn or "", autocommit=True)


def cmd_log(args: argparse.Namespace) -> int:
    with _connect(args) as conn, render.Progress("reading history"):
        events = api.history(conn, args.table, key=args.key, since=args.since, last=None if args.all else args.limit)
    if args.json:
        print(render.as_json(events))
        return 0
    lines = render.timeline(events, render.use_colour(args.color, sys.stdout), show_table=args.table is None)
    if not lines:
        lines = ["(no events)"]
    render.page(lines)
    return 0


def _list(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def cmd_track(args: argparse.Namespace) -> int:
    with _connect(args) as conn:
        label = f"track_table({args.table!r})"
        if args.baseline:
            rows = conn.execute("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass",
                                [args.table]).fetchone()
            label = f"track_table({args.table!r}, baseline => true): recording about {rows[0] if rows else 0} rows"
        with render.Progress(label):
            event_table = api.track_table(conn, args.table, label=args.label, operations=_list(args.operations),
                                          condition=args.condition, changed=_list(args.changed),
                                          snapshot=args.snapshot, columns=_list(args.columns),
                                          exclude=_list(args.exclude), baseline=args.baseline)
        for t in api.trackers(conn, args.table):
            print(f"{t.label:<12} {','.join(t.operations):<22} {t.condition or ''}".rstrip())
    print(f"history of {args.table} goes to {event_table}")
    return 0


def cmd_untrack(args: argparse.Namespace) -> int:
    with _connect(args) as conn, render.Progress(f"untrack_table({args.table!r})"):
        api.untrack_table(conn, args.table, label=args.label, drop_events=args.drop_events)
    what = f"tracker {args.label!r} of {args.table}" if args.label else args.table
    print(f"untracked {what}{' and dropped its history' if args.drop_events else ''}")
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    if args.no_extension:
        if not args.dsn:
            raise InstallError("--no-extension installs into a database: give --dsn",
                               hint="history-track install --no-extension --dsn 'host=... dbname=...'")
        with _connect(args) as conn, render.Progress("installing history_track"):
            done = install_without_extension(conn, schema=args.schema or "public")
        print(f"installed history_track {done.version} without CREATE EXTENSION: "
              f"the API in schema {done.schema}, internals in schema history_track")
        if not done.event_triggers:
            print("warning: this role may not create event triggers, so ALTER TABLE and DROP TABLE on "
                  "tracked tables are not followed (untrack before altering, track again after)",
                  file=sys.stderr)
        return 0
    if not args.no_files:
        for path in install_files(args.pg_config):
            print(f"installed {path}")
    if args.dsn:
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            installed = create_extension(conn, schema=args.schema)
            print(f"CREATE EXTENSION history_track: version {installed}")
    return 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    with _connect(args) as conn:
        removed = uninstall(conn)
    print("DROP EXTENSION history_track" if removed == "extension"
          else "removed history_track (installed without the extension); event tables kept")
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    print(version())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="history-track",
        description="Row history for PostgreSQL, recorded by triggers.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)

    demo = sub.add_parser("demo", help="track a table on a temporary server and show its history",
                          description="Start a temporary PostgreSQL server, track an orders table, "
                                      "make a few changes with context, print the events, clean up.")
    demo.add_argument("--pg-config", help="pg_config of the PostgreSQL to use (default: on PATH)")
    demo.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                      help="colour the output (default: when writing to a terminal)")
    demo.set_defaults(func=cmd_demo)

    install = sub.add_parser("install", help="install the extension's files (and CREATE EXTENSION)",
                             description="Write history_track's control file and SQL scripts into the "
                                         "share/extension directory of a PostgreSQL installation; "
                                         "with --dsn, also run CREATE EXTENSION in that database.")
    install.add_argument("--pg-config", help="pg_config of the target installation (default: on PATH)")
    install.add_argument("--dsn", help="connection string of a database to CREATE EXTENSION in")
    install.add_argument("--schema", help="schema for the public API (default: the first in search_path;"
                                          " public with --no-extension)")
    install.add_argument("--no-files", action="store_true", help="only run CREATE EXTENSION")
    install.add_argument("--no-extension", action="store_true",
                         help="no files, no CREATE EXTENSION: run the same SQL in the database of --dsn "
                              "(for managed PostgreSQL, where extension files cannot be installed)")
    install.set_defaults(func=cmd_install)

    uninstall_cmd = sub.add_parser("uninstall", help="remove history_track from a database (history is kept)",
                                   description="DROP EXTENSION history_track, or remove an install made with "
                                               "--no-extension. Refused while tables are tracked; event "
                                               "tables are never dropped.")
    uninstall_cmd.add_argument("--dsn", help="connection string (default: libpq's PG* environment variables)")
    uninstall_cmd.set_defaults(func=cmd_uninstall)

    def dsn_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dsn", help="connection string (default: libpq's PG* environment variables)")

    log = sub.add_parser("log", help="show a table's recent events, or one row's timeline, with diffs",
                         description="Show history oldest first: the last events of a table (or of every "
                                     "table you may read), or with KEY one row's whole timeline, following "
                                     "primary-key changes. Each event shows who (its context) and what changed. "
                                     "Colour on a terminal, plain when piped; long output is paged.")
    log.add_argument("table", nargs="?", help="the tracked table (default: every table)")
    log.add_argument("key", nargs="?", help="a row's primary key: 42, or a JSON array for a composite key")
    log.add_argument("-n", "--limit", type=int, default=20, help="how many of the latest events (default 20)")
    log.add_argument("--all", action="store_true", help="every event, not only the latest")
    log.add_argument("--since", help="only events recorded since this time (e.g. '2026-01-01', 'yesterday')")
    log.add_argument("--json", action="store_true", help="print the events as a JSON array, for scripts")
    log.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                     help="colour the output (default: when writing to a terminal)")
    dsn_option(log)
    log.set_defaults(func=cmd_log)

    track = sub.add_parser("track", help="start recording a table's history (track_table)",
                           description="Call track_table(): without --label, the event table and the default "
                                       "trackers; with --label, one named tracker. Lists the table's trackers.")
    track.add_argument("table")
    track.add_argument("--label")
    track.add_argument("--operations", help="comma-separated subset of insert,update,delete")
    track.add_argument("--condition", help="boolean SQL over OLD and NEW")
    track.add_argument("--changed", help="comma-separated columns: record updates only when these changed")
    track.add_argument("--snapshot", choices=["old", "new"])
    track.add_argument("--columns", help="comma-separated columns the event table mirrors")
    track.add_argument("--exclude", help="comma-separated columns it leaves out")
    track.add_argument("--baseline", action="store_true", help="also record every row as it is now")
    dsn_option(track)
    track.set_defaults(func=cmd_track)

    untrack = sub.add_parser("untrack", help="stop recording a table's history (untrack_table)",
                             description="Call untrack_table(): remove every tracker (the history stays), "
                                         "or one with --label; --drop-events also drops the event table.")
    untrack.add_argument("table")
    untrack.add_argument("--label")
    untrack.add_argument("--drop-events", action="store_true")
    dsn_option(untrack)
    untrack.set_defaults(func=cmd_untrack)

    ver = sub.add_parser("version", help="print the extension version", description="Print the version.")
    ver.set_defaults(func=cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except InstallError as exc:
        print(f"history-track: error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1
    except ServerError as exc:
        print(f"history-track: error: {exc}", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        diag = exc.diag
        print(f"history-track: error: {diag.message_primary or exc} (SQLSTATE {exc.sqlstate})", file=sys.stderr)
        if diag.message_detail:
            print(f"detail: {diag.message_detail}", file=sys.stderr)
        if diag.message_hint:
            print(f"hint: {diag.message_hint}", file=sys.stderr)
        return 1
